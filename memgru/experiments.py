"""The paper's tables and figures as reproducible experiments writing `results/<task>_<name>.csv`.

- `bits`: metric vs weight bits (2…16 and float), post-training quantization (PTQ: the float-trained
  model quantized as is) next to quantization-aware training (QAT: the float model fine-tuned at that
  precision for a few epochs). Paper Tables 1, 4, 5.
- `sigma`: metric vs programming variation σ (fraction of g_max − g_min) for the float-trained and
  the noise-trained model, at 6-bit weights / 8-bit activations, over several device seeds. Fig. 7.
- `snr`: metric vs input SNR, float and 6-bit: white noise added to the raw signal where the task
  can rebuild it (audio: the clip's waveform, then featurised), else to the model inputs. Table 3.
- `families` (trajectory): accuracy per false-track family and magnitude bin, and the false-alarm
  rate on real tracks, for the float- and noise-trained models at float and 6-bit weights.
- `unusual` (trajectory): the false-alarm rate on real flights of unusual shape (gliders, survey
  grids, calibration orbits, holdings ...: the `unusual` split, never trained on), per category and
  flight, same four models.
- `operating` (trajectory): detection at fixed false-alarm rates. The threshold on P(false) is set on
  the *validation* real windows for each target rate, then the test false-alarm rate, the fakes
  caught and the unusual flights' false-alarm rate are measured at it; with the test ROC AUC and the
  share of real test tracks (aircraft segments) whose mean P(false) passes the threshold, the verdict
  `predict` gives a track file; same four models (plus the plain argmax rule, threshold 0.5).
- `detection` (trajectory): detection limits per false-track family: the magnitude (and what it sets
  physically, `trajectory_fakes.FAMILY_KNOBS`) at which each model catches 50 % and 90 % of the family's
  test fakes (argmax verdict), from a logistic fit of caught vs magnitude with a bootstrap 95 % interval;
  same four models.
- `incident` (trajectory): real flights with known trouble (`trajectory.INCIDENT_FLIGHTS`, the `incident`
  split: one under GNSS interference, one with positions arriving in bursts), cut into stretches by physics
  rules (`trajectory.label_incident`: normally reported, values held, GNSS-interfered); per stretch the share
  of windows called false and the mean P(false), same four models.

Every row names the task, the evaluation set (group columns such as `temperature_c`), the setting
and the seed. `python -m memgru experiment --task T --name N` runs one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from torch import nn

from memgru.checkpoint import load_checkpoint, update_extra
from memgru.config import FLOAT_BITS, TrainConfig
from memgru.errors import MemgruError
from memgru.evaluate import chip_model
from memgru.pipeline import deployed_model, evaluate_sets, load_calibration, plain_copy, subset, task_act_percentile
from memgru.tasks.common import SequenceSet
from memgru.tasks.io import task_io
from memgru.tasks.registry import task_spec
from memgru.train import finetune_config, predict, train_model

PAPER_BITS = (2, 3, 4, 5, 6, 7, 8, 16, FLOAT_BITS)
"""Weight precisions of the paper's tables."""
PAPER_SIGMAS = (0.0, 0.02, 0.05, 0.08, 0.1, 0.15, 0.2)
"""Programming variation levels of Fig. 7."""
PAPER_SNRS = (-10.0, -5.0, 0.0, 5.0, 10.0)
"""Input SNRs of Table 3 (dB)."""
EXPERIMENTS = ("bits", "sigma", "snr", "families", "unusual", "operating", "incident", "tracks", "detection")
"""Experiment names."""
TABLE_EXPERIMENTS = ("families", "unusual", "operating", "incident", "tracks", "detection")
"""Experiments whose CSV is a table per case (false family, flight, threshold, stretch), not a metric curve over
weight bits, σ or SNR; the model cards show them."""
DETECTABLE_MAGNITUDE = 0.2
"""Fakes below this magnitude are close to copies of real tracks (m = 0 reproduces the source track for
pull-off, velocity inconsistency, altitude and speed ramps), so no detector can reach 100 % on them."""
OPERATING_FA_PCT = (0.5, 1.0, 2.0, 5.0)
"""Validation false-alarm rates (%) at which the `operating` experiment sets its detection thresholds."""


CALIBRATION_MIN_BITS = 4
"""Weight bits from which a validation sweep of activation calibrations is averaged (`choose_act_percentile`):
at 2-3 bits the weights, not the activation ranges, decide the accuracy."""


CALIBRATION_ALPHA = 0.05
"""False-switch rate of `choose_act_percentile`: a calibration replaces the task's default only when its paired
gain on validation is significant at this level, one-sided, Bonferroni-corrected over the alternatives compared."""


def calibration_critical_z(alternatives: int, alpha: float = CALIBRATION_ALPHA) -> float:
    """The z a calibration's paired gain over the default must exceed when `alternatives` calibrations are
    compared with it: the one-sided normal quantile at `alpha` / `alternatives` (Bonferroni)."""
    from statistics import NormalDist

    return NormalDist().inv_cdf(1.0 - alpha / max(alternatives, 1))


def choose_act_percentile(rows: pd.DataFrame, default: float, value: str = "accuracy", *,
                          min_bits: int = CALIBRATION_MIN_BITS,
                          alpha: float = CALIBRATION_ALPHA) -> tuple[float, pd.DataFrame]:
    """The activation range calibration (percentile) a validation sweep supports, and the table it is read from.

    `rows` are `calibrate` rows: per percentile and weight precision, `value` (%, higher is better) and `n`, and per
    percentile `paired_gain` / `paired_se`: the mean and standard error over validation sequences of the
    sequence's gain over the `default` calibration (its `value` averaged over the quantized weight bits from
    `min_bits`, in points). Each percentile's score is its mean `value` over those bits. The default stays unless a
    calibration's gain is significant (z = gain / se above the one-sided normal quantile at `alpha` divided by the
    number of alternatives); among significant ones the best score wins. The validation set cannot tell apart
    calibrations a few sequences apart, and choosing on such noise does not carry over to new data. Returns
    (percentile, table of percentile, mean, paired_gain, z, chosen).
    """
    quantized = rows[(rows["weight_bits"] >= min_bits) & (rows["weight_bits"] < FLOAT_BITS)]
    if quantized.empty:
        raise MemgruError(f"no quantized rows with {min_bits}+ weight bits to choose an activation calibration from")
    if not {"paired_gain", "paired_se"} <= set(quantized.columns):
        raise MemgruError("the calibration sweep has no paired statistics (paired_gain, paired_se); "
                          "rerun it with `python -m memgru calibrate`")
    by = quantized.groupby("act_percentile")
    table = pd.DataFrame({"mean": by[value].mean(), "paired_gain": by["paired_gain"].first(),
                          "paired_se": by["paired_se"].first()}).sort_index(ascending=False)
    if float(default) not in table.index:
        raise MemgruError(f"the calibration sweep does not include the default percentile {default:g}")
    table["z"] = (table["paired_gain"] / table["paired_se"].where(table["paired_se"] > 0)).fillna(0.0)
    critical = calibration_critical_z(len(table) - 1, alpha)
    significant = table[(table.index != float(default)) & (table["z"] > critical)]
    chosen = float(default) if significant.empty else float(significant["mean"].idxmax())
    table = table.reset_index().rename(columns={"index": "act_percentile"})
    table["chosen"] = table["act_percentile"] == chosen
    return chosen, table[["act_percentile", "mean", "paired_gain", "z", "chosen"]]


CALIBRATION_PERCENTILES = (100.0, 99.999, 99.99, 99.9, 99.5)
"""Activation calibrations (percentiles; 100 = min/max) a `calibrate` sweep compares by default."""
CALIBRATION_BITS = (2, 3, 4, 5, 6, 7, 8, 16)
"""Weight bits a `calibrate` sweep evaluates by default (the choice averages those from `CALIBRATION_MIN_BITS`)."""


def calibration_sweep(model: nn.Module, data: SequenceSet, calibration: np.ndarray, bits: Sequence[int],
                      percentiles: Sequence[float], default: float, act_bits: int = 8) -> pd.DataFrame:
    """Accuracy (%) of `model` on `data` at every weight precision in `bits` and activation calibration in
    `percentiles` (ideal device, `act_bits` activations), one row each, with each percentile's paired gain over
    `default` (`paired_gain`, `paired_se`, points: mean and standard error over sequences of the sequence's
    accuracy averaged over the bits from `CALIBRATION_MIN_BITS` to 16, minus the same at `default`)."""
    percentiles = sorted({float(p) for p in [*percentiles, default]}, reverse=True)
    y = torch.as_tensor(data.y)
    correct, rows = {}, []
    for p in percentiles:
        for b in bits:
            chip = chip_model(model, b, act_bits if b < FLOAT_BITS else FLOAT_BITS, 0.0, 0, calibration,
                              act_percentile=p)
            hit = (predict(chip, data.x).argmax(dim=-1) == y).double().numpy() * 100.0
            correct[p, b] = hit
            rows.append({"weight_bits": b, "act_bits": act_bits if b < FLOAT_BITS else FLOAT_BITS,
                         "act_percentile": p, "accuracy": float(hit.mean()), "n": len(hit)})
    chosen_bits = [b for b in bits if CALIBRATION_MIN_BITS <= b < FLOAT_BITS]
    per_sequence = {p: np.mean([correct[p, b] for b in chosen_bits], axis=0) for p in percentiles}
    table = pd.DataFrame(rows)
    for p in percentiles:
        gain = per_sequence[p] - per_sequence[float(default)]
        se = float(gain.std(ddof=1) / np.sqrt(len(gain))) if len(gain) > 1 else 0.0
        table.loc[table["act_percentile"] == p, ["paired_gain", "paired_se"]] = float(gain.mean()), se
    return table


def calibrate_checkpoint(
    task: str, folder: Path, data_dir: Path | None = None, bits: Sequence[int] = CALIBRATION_BITS,
    percentiles: Sequence[float] = CALIBRATION_PERCENTILES, act_bits: int = 8, store: bool = True,
) -> tuple[float, pd.DataFrame, pd.DataFrame]:
    """Choose the activation calibration of the checkpoint in `folder` on the validation split.

    Evaluates it at every weight precision in `bits` and every percentile (`calibration_sweep`; the task's
    default percentile is always included), applies `choose_act_percentile` (accuracy tasks only) and, when
    `store`, writes the choice into the checkpoint's config (`extra.act_percentile`, read by
    `pipeline.task_act_percentile`, so `predict`, `evaluate`, `experiment`, `plan` and the dashboard use it).
    Returns (chosen percentile, the rule's table, the sweep's rows).
    """
    spec = task_spec(task)
    if spec.metric != "accuracy":
        raise MemgruError(f"calibrate chooses on validation accuracy; {task}'s metric is {spec.metric}")
    if act_bits >= FLOAT_BITS:
        raise MemgruError(f"calibrate compares activation ranges; with {act_bits}-bit (float) activations there "
                          "are none to calibrate (use --act-bits 2..16)")
    quantized = [b for b in bits if CALIBRATION_MIN_BITS <= b < FLOAT_BITS]
    if not quantized:
        raise MemgruError(f"calibrate needs weight bits from {CALIBRATION_MIN_BITS} to 16 to choose on, got "
                          f"{','.join(str(b) for b in bits)}")
    model, _ = load_checkpoint(folder, task=task)
    io = task_io(task)
    val = io.load_split(io.data_dir(data_dir), "val")
    rows = calibration_sweep(model, val, load_calibration(folder), bits, percentiles, spec.act_percentile, act_bits)
    chosen, table = choose_act_percentile(rows, spec.act_percentile)
    if store:
        update_extra(folder, {"act_percentile": chosen, "act_percentile_sweep": {
            "split": "val", "act_bits": act_bits, "weight_bits": quantized, "default": spec.act_percentile,
            "mean_accuracy": {f"{p:g}": round(float(m), 4) for p, m in zip(table["act_percentile"], table["mean"],
                                                                          strict=True)},
            "z_vs_default": {f"{p:g}": round(float(z), 3) for p, z in zip(table["act_percentile"], table["z"],
                                                                         strict=True)}}})
    return chosen, table, rows


def family_rows(model: nn.Module, data: SequenceSet) -> pd.DataFrame:
    """Accuracy per `family` (and magnitude bin) of a classifier; for the real family this is
    100 % minus the false-alarm rate. Needs `family` and `magnitude` columns in `data.meta`."""
    pred = predict(model, data.x).argmax(dim=-1).numpy()
    meta = data.meta.assign(correct=(pred == data.y) * 100.0)
    meta["magnitude_bin"] = pd.cut(meta["magnitude"], [-0.01, 0.1, 0.2, 0.4, 0.7, 1.0]).astype(str)
    meta.loc[meta["family"] == "real", "magnitude_bin"] = "real"
    per_family = meta.groupby("family")["correct"].agg(["mean", "size"]).reset_index().assign(magnitude_bin="all")
    per_bin = meta.groupby(["family", "magnitude_bin"])["correct"].agg(["mean", "size"]).reset_index()
    per_bin = per_bin[per_bin["family"] != "real"]
    return pd.concat([per_family, per_bin], ignore_index=True).rename(columns={"mean": "accuracy", "size": "n"})


DETECTION_LEVELS = (50.0, 90.0)
"""Shares of a family's fakes caught (%) whose magnitude the detection experiment reports."""
DETECTION_RESAMPLES = 200
"""Bootstrap resamples (of a family's test fakes) behind each detection limit's 95 % interval."""


def fit_logistic(x: np.ndarray, y: np.ndarray, ridge: float = 1e-4, iterations: int = 100) -> tuple[float, float]:
    """Maximum-likelihood (a, b) of P(y = 1 | x) = 1 / (1 + exp(-(a + b x))) by Newton's method; the small
    ridge keeps them finite when the outcomes are separable in x."""
    design = np.column_stack([np.ones(len(x)), np.asarray(x, dtype=float)])
    target = np.asarray(y, dtype=float)
    w = np.zeros(2)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(design @ w, -60.0, 60.0)))
        grad = design.T @ (target - p) - ridge * w
        hess = (design * (p * (1.0 - p))[:, None]).T @ design + ridge * np.eye(2)
        step = np.linalg.solve(hess, grad)
        w = w + step
        if np.abs(step).max() < 1e-9:
            break
    return float(w[0]), float(w[1])


def magnitude_at(a: float, b: float, level: float) -> float:
    """Magnitude at which the logistic curve (a, b) reaches `level` % (inf when it never rises: b <= 0)."""
    return float((np.log(level / (100.0 - level)) - a) / b) if b > 0 else np.inf


def detection_rows(model: nn.Module, data: SequenceSet, knobs: dict[str, tuple], *,
                   levels: Sequence[float] = DETECTION_LEVELS, resamples: int = DETECTION_RESAMPLES,
                   seed: int = 0) -> pd.DataFrame:
    """Detection limits of a real-vs-false classifier per false-track family of `data` (meta `family`,
    `magnitude`): for each level L in `levels` the magnitude at which L % of the family's fakes are called
    false (argmax), from a logistic fit of caught vs magnitude, with the 2.5 / 97.5 % bootstrap quantiles
    over `resamples` resamples of the family's fakes (seeded). Magnitudes outside 0-1 are extrapolations:
    below 0 the family is caught that often even at magnitude 0, above 1 (or inf) not within the range.
    One row per family, level and knob (`knobs[family]`, `trajectory_fakes.Knob`): `quantity`, `unit` and
    `value` (the knob at the estimated magnitude, NaN outside 0-1)."""
    if "family" not in data.meta or "magnitude" not in data.meta:
        raise MemgruError("the detection experiment needs false windows with families and magnitudes")
    caught = predict(model, data.x).argmax(dim=-1).numpy() == 1
    rng = np.random.default_rng(seed)
    rows = []
    for family, group in data.meta.groupby("family", sort=True):
        if family not in knobs:
            continue
        idx = group.index.to_numpy()
        m, hit = group["magnitude"].to_numpy(dtype=float), caught[idx]
        a, b = fit_logistic(m, hit)
        boot = [fit_logistic(m[pick], hit[pick]) for pick in
                (rng.integers(len(m), size=len(m)) for _ in range(resamples))]
        for level in levels:
            estimate = magnitude_at(a, b, level)
            spread = np.array([magnitude_at(ba, bb, level) for ba, bb in boot])
            low, high = (float(np.quantile(spread, q, method="inverted_cdf")) for q in (0.025, 0.975))
            for knob in knobs[family]:
                rows.append({"family": family, "level_pct": level, "magnitude": estimate, "magnitude_low": low,
                             "magnitude_high": high, "n": len(m), "caught_pct": 100.0 * hit.mean(),
                             "quantity": knob.quantity, "unit": knob.unit,
                             "value": knob.value(estimate) if 0.0 <= estimate <= 1.0 else np.nan})
    if not rows:
        raise MemgruError("no false-track family of the data has a magnitude knob")
    return pd.DataFrame(rows)


def false_alarm_rows(model: nn.Module, data: SequenceSet) -> pd.DataFrame:
    """False-alarm rates (%) of a real-vs-false classifier on all-real `data`, overall, per `category` and
    per `flight` of its meta. Rows: level (all / category / flight), name, windows n, false_alarm_pct (windows
    called false), flights, flights_called_false_pct (flights whose mean P(false) over their windows passes
    0.5: the verdict `predict` gives a whole flight's file; 0 or 100 on a flight row)."""
    p_false = false_scores(model, data)
    meta = data.meta.assign(flagged=(p_false > 0.5) * 100.0, p_false=p_false)
    verdict = (meta.groupby("flight")["p_false"].mean() > 0.5) * 100.0
    meta["flight_called"] = meta["flight"].map(verdict)
    per_flight = meta.drop_duplicates("flight")
    rows = []
    for level in ("category", "flight"):
        windows = meta.groupby(level)["flagged"].agg(["mean", "size"])
        flights = per_flight.groupby(level)["flight_called"].agg(["mean", "size"])
        rows.append(pd.DataFrame({"name": windows.index, "false_alarm_pct": windows["mean"].to_numpy(),
                                  "n": windows["size"].to_numpy(), "level": level,
                                  "flights": flights.loc[windows.index, "size"].to_numpy(),
                                  "flights_called_false_pct": flights.loc[windows.index, "mean"].to_numpy()}))
    total = pd.DataFrame({"name": ["all"], "false_alarm_pct": [float(meta["flagged"].mean())], "n": [len(meta)],
                          "level": ["all"], "flights": [len(per_flight)],
                          "flights_called_false_pct": [float(per_flight["flight_called"].mean())]})
    return pd.concat([total, *rows], ignore_index=True)


def incident_rows(model: nn.Module, data: SequenceSet) -> pd.DataFrame:
    """Per flight and stretch of the `incident` split: its kind, span (s from the flight's first report), windows, the
    share of them called false (argmax) and the mean P(false) (the verdict `predict` would give the stretch
    as a file is false when that mean passes 0.5)."""
    p_false = false_scores(model, data)
    table = data.meta.assign(p_false=p_false, called=(p_false > 0.5) * 100.0)
    rows = table.groupby(["flight", "stretch"], sort=True).agg(
        kind=("kind", "first"), start_s=("stretch_start_s", "first"), end_s=("stretch_end_s", "first"),
        n=("p_false", "size"), called_false_pct=("called", "mean"), mean_p_false=("p_false", "mean"))
    return rows.reset_index()


def false_scores(model: nn.Module, data: SequenceSet | np.ndarray) -> np.ndarray:
    """P(false) [N] of a real-vs-false classifier (class 1 = false) on each sequence of `data` (or inputs [N, T, F])."""
    x = data.x if isinstance(data, SequenceSet) else data
    return torch.softmax(predict(model, x), dim=-1)[:, 1].numpy()


def roc_auc(scores: np.ndarray, positive: np.ndarray) -> float:
    """Area under the ROC curve (%) of `scores` for boolean labels `positive` (ties count half)."""
    ranks = pd.Series(scores).rank().to_numpy()
    n_pos, n_neg = int(positive.sum()), int((~positive).sum())
    if n_pos == 0 or n_neg == 0:
        raise MemgruError("the ROC AUC needs both real and false windows")
    return float((ranks[positive].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg) * 100)


def threshold_settings(val_real: np.ndarray, targets: Sequence[float]) -> list[tuple[str, float]]:
    """[(name, threshold on P(false))]: `argmax` (0.5), then for each target false-alarm rate t % the (100 - t)-th
    percentile of the validation real windows' scores `val_real`."""
    if len(val_real) == 0:
        raise MemgruError("no validation real windows to set a threshold on")
    return [("argmax", 0.5)] + [(f"{t:g}", float(np.percentile(val_real, 100.0 - t))) for t in targets]


def track_rows(val_real: np.ndarray, real_tracks: pd.DataFrame, false_tracks: pd.DataFrame, magnitude: np.ndarray,
               targets: Sequence[float] = OPERATING_FA_PCT, family: np.ndarray | None = None) -> pd.DataFrame:
    """Whole-track verdicts at the operating points of `operating_rows`: a track is called false when the mean
    P(false) over its windows passes the threshold, as `predict` judges a track file.

    `val_real`: scores of the validation real windows (they set the thresholds, `threshold_settings`);
    `real_tracks`, `false_tracks`: each test track's `mean` and `max` window score (`_track_scores`);
    `magnitude`: each false track's knob. One row per setting: threshold, real tracks called false (%), false
    tracks caught (all, and of magnitude ≥ `DETECTABLE_MAGNITUDE`), accuracy over both, the counts, and two
    threshold-free ROC AUCs (%) of telling false from real tracks: by the mean (the verdict's rule) and by the
    most suspicious window (`track_auc_max_pct`). With `family` (each false track's), the rows are `family` "all"
    followed by one row per family and setting whose caught rates count that family's false tracks only.
    """
    strong = magnitude >= DETECTABLE_MAGNITUDE - 1e-9
    truth = np.concatenate([np.zeros(len(real_tracks), bool), np.ones(len(false_tracks), bool)])
    aucs = {"track_auc_pct": roc_auc(np.concatenate([real_tracks["mean"], false_tracks["mean"]]), truth),
            "track_auc_max_pct": roc_auc(np.concatenate([real_tracks["max"], false_tracks["max"]]), truth)}
    real_tracks, false_tracks = real_tracks["mean"].to_numpy(), false_tracks["mean"].to_numpy()
    rows, by_family = [], []
    for target, threshold in threshold_settings(val_real, targets):
        fa, caught = real_tracks > threshold, false_tracks > threshold
        rows.append({
            "target_val_fa_pct": target, "threshold": threshold,
            "track_fa_pct": float(fa.mean() * 100), "tracks_caught_pct": float(caught.mean() * 100),
            "tracks_caught_strong_pct": float(caught[strong].mean() * 100) if strong.any() else float("nan"),
            "track_accuracy": float((np.sum(~fa) + np.sum(caught)) / (len(fa) + len(caught)) * 100),
            "n_real_tracks": len(real_tracks), "n_false_tracks": len(false_tracks), **aucs,
        })
        for name in [] if family is None else sorted(set(family)):
            mine = np.asarray(family) == name
            by_family.append({"family": name, "target_val_fa_pct": target, "threshold": threshold,
                              "tracks_caught_pct": float(caught[mine].mean() * 100), "n_false_tracks": int(mine.sum())})
    if family is None:
        return pd.DataFrame(rows)
    return pd.concat([pd.DataFrame(rows).assign(family="all"), pd.DataFrame(by_family)], ignore_index=True)


def operating_rows(val_real: np.ndarray, test: np.ndarray, test_false: np.ndarray, magnitude: np.ndarray,
                   unusual: np.ndarray | None = None, targets: Sequence[float] = OPERATING_FA_PCT,
                   test_track: np.ndarray | None = None) -> pd.DataFrame:
    """Detection at fixed false-alarm rates from P(false) scores.

    `val_real`: scores of the validation real windows, which alone set each threshold (the (100 - t)-th
    percentile of them for a target rate t %); `test`, `test_false`, `magnitude`: the test windows' scores,
    truth (True = false track) and fake magnitude; `unusual`: scores of the real unusual flights, if any.
    One row per target plus `argmax` (threshold 0.5): threshold, the rates (%) it gives on validation and
    test real windows, test fakes caught (all, and of magnitude ≥ `DETECTABLE_MAGNITUDE`), test accuracy,
    the unusual flights' false-alarm rate, and the test ROC AUC (%), which no threshold changes. With
    `test_track` (an id per test window naming the real track it was cut from), also `track_fa_pct`: the
    real tracks whose mean score over their windows passes the threshold, the verdict `predict` gives a
    whole track file, and `n_tracks`.
    """
    auc = roc_auc(test, test_false)
    strong = test_false & (magnitude >= DETECTABLE_MAGNITUDE - 1e-9)
    track_scores = None
    if test_track is not None:
        track_scores = pd.Series(test[~test_false]).groupby(np.asarray(test_track)[~test_false]).mean().to_numpy()
    rows = []
    for target, threshold in threshold_settings(val_real, targets):
        flagged = test > threshold
        tracks = {} if track_scores is None else {"track_fa_pct": float((track_scores > threshold).mean() * 100),
                                                   "n_tracks": len(track_scores)}
        rows.append({
            "target_val_fa_pct": target, "threshold": threshold,
            "val_fa_pct": float((val_real > threshold).mean() * 100),
            "test_fa_pct": float(flagged[~test_false].mean() * 100),
            "caught_pct": float(flagged[test_false].mean() * 100),
            "caught_strong_pct": float(flagged[strong].mean() * 100) if strong.any() else float("nan"),
            "accuracy": float((flagged == test_false).mean() * 100),
            "unusual_fa_pct": float((unusual > threshold).mean() * 100) if unusual is not None and len(unusual)
            else float("nan"),
            "auc_pct": auc, "n": len(test), **tracks,
        })
    return pd.DataFrame(rows)


def _track_scores(model: nn.Module, x: np.ndarray, owner: np.ndarray) -> pd.DataFrame:
    """Mean and max P(false) per track (columns `mean`, `max`) of windows `x` [N, T, F] whose track indices are
    `owner` [N] (0..K-1)."""
    return pd.Series(false_scores(model, x)).groupby(owner).agg(["mean", "max"])


def _track_ids(meta: pd.DataFrame) -> np.ndarray | None:
    """Id of the real track (aircraft and gap-free segment) each window was cut from, or None when the
    metadata does not say."""
    if not {"source", "segment"} <= set(meta.columns):
        return None
    return (meta["source"].astype(str) + "/" + meta["segment"].astype(str)).to_numpy()


def qat_finetune(
    model: nn.Module, train: SequenceSet, val: SequenceSet, base: TrainConfig, weight_bits: int, epochs: int
) -> nn.Module:
    """Fine-tune a copy of `model` with QAT at `weight_bits` for `epochs` at a tenth of the base lr.

    Weights are fake-quantized in training (STE); activations stay float during fine-tuning (the fused
    GRU kernel keeps it affordable on a CPU) and are quantized at `act_bits` only when evaluated.
    """
    trained, _ = train_model(plain_copy(model, model.cfg), train, val, finetune_config(base, epochs, weight_bits))
    return trained


def _four_chips(task: str, folder: Path, float_model: nn.Module, act_bits: int, percentiles: dict[str, float]
                ) -> list[tuple[dict[str, object], nn.Module]]:
    """The float- and noise-trained models of a task folder at float and at 6-bit weights (ideal device,
    calibrated on the float model's calibration set at `percentiles[training]`): [({training, weight_bits,
    act_bits[, act_percentile of a quantized chip]}, model)]."""
    noise_model, _ = load_checkpoint(folder, task=task)
    chips = []
    for training, model in (("float", float_model), ("noise", noise_model)):
        for bits in (FLOAT_BITS, 6):
            act = FLOAT_BITS if bits >= FLOAT_BITS else act_bits
            setting: dict[str, object] = {"training": training, "weight_bits": bits, "act_bits": act}
            if bits < FLOAT_BITS:
                setting["act_percentile"] = percentiles[training]
            chips.append((setting, deployed_model(model, folder / "float", bits, act, 0.0, 0,
                                         act_percentile=percentiles[training])))
    return chips


def model_percentiles(folder: Path, act_percentile: float | None = None) -> dict[str, float]:
    """Activation calibration of each model of a task folder, {"float": ..., "noise": ...}: `act_percentile`
    for both when given, else each checkpoint's own (`pipeline.task_act_percentile`: the one `calibrate` chose
    on validation, or the task's default)."""
    if act_percentile is not None:
        return {"float": act_percentile, "noise": act_percentile}
    percentiles = {"float": task_act_percentile(folder / "float")}
    if (folder / "config.json").is_file():  # a baseline folder holds only float/
        percentiles["noise"] = task_act_percentile(folder)
    return percentiles


def run_experiment(
    task: str,
    name: str,
    folder: Path,
    data_dir: Path | None = None,
    bits: Sequence[int] = PAPER_BITS,
    sigmas: Sequence[float] = PAPER_SIGMAS,
    snrs: Sequence[float] = PAPER_SNRS,
    seeds: int = 5,
    act_bits: int = 8,
    qat_epochs: int = 2,
    progress: Callable[[str], None] | None = None,
    limit: int | None = None,
    gate_bits: int | None = None,
    act_percentile: float | None = None,
) -> pd.DataFrame:
    """Run experiment `name` on the task folder `folder` (deployed model + `float/`); returns the rows.

    `limit` evaluates a seeded random subset of at most that many sequences per evaluation set
    (the rows' `n` column says how many were used). `gate_bits` gives the gate outputs their own
    precision (bits, sigma and snr experiments; see `QuantConfig.gate_bits`). `act_percentile`: activation
    range calibration of every quantized model (default: each model's own, `model_percentiles`; QAT models
    take their float-trained model's).
    """
    if gate_bits is not None and name in TABLE_EXPERIMENTS:
        raise MemgruError(f"--gate-bits applies to the bits, sigma and snr experiments, not {name}")
    percentiles = model_percentiles(folder, act_percentile)
    acts = {"act_bits": act_bits, **({} if gate_bits is None else {"gate_bits": gate_bits})}
    float_acts = {**acts, "act_percentile": percentiles["float"]}
    io = task_io(task)
    data_dir = io.data_dir(data_dir)
    sets = [(group, subset(data, limit)) for group, data in io.evaluation_sets(data_dir)]
    say = progress or (lambda _: None)
    float_model, float_cfg = load_checkpoint(folder / "float", task=task)
    calibration = load_calibration(folder / "float")
    start = time.perf_counter()

    def four_chips() -> list[tuple[dict[str, object], nn.Module]]:
        return _four_chips(task, folder, float_model, act_bits, percentiles)

    if name == "bits":
        ptq = evaluate_sets(float_model, sets, calibration, bits=bits, **float_acts).assign(method="ptq")
        say(f"PTQ done in {time.perf_counter() - start:.0f} s")
        train, val = io.load_split(data_dir, "train"), io.load_split(data_dir, "val")
        base = TrainConfig.from_dict(float_cfg["extra"]["train"])
        qat = []
        for b in (b for b in bits if b < FLOAT_BITS):
            tuned = plain_copy(qat_finetune(float_model, train, val, base, b, qat_epochs), float_model.cfg)
            qat.append(evaluate_sets(tuned, sets, calibration, bits=[b], **float_acts).assign(
                method="qat", qat_epochs=qat_epochs))
            say(f"QAT {b}-bit done at {time.perf_counter() - start:.0f} s")
        rows = pd.concat([ptq, *qat], ignore_index=True)
    elif name == "sigma":
        noise_model, _ = load_checkpoint(folder, task=task)
        tables = []
        for training, model in (("float", float_model), ("noise", noise_model)):
            tables.append(evaluate_sets(model, sets, calibration, bits=[6], **acts, sigmas=sigmas, seeds=range(seeds),
                                        act_percentile=percentiles[training]).assign(training=training))
            say(f"sigma sweep of the {training}-trained model done at {time.perf_counter() - start:.0f} s")
        rows = pd.concat(tables, ignore_index=True)
    elif name == "snr":
        perturb, noise_on = io.input_noise(data_dir)
        rows = evaluate_sets(float_model, sets, calibration, bits=[6, FLOAT_BITS], **float_acts,
                             snrs=[None, *snrs], perturb=perturb).assign(noise_on=noise_on)
    elif name == "families":
        rows = pd.concat([family_rows(chip, data).assign(**setting)
                          for setting, chip in four_chips() for _, data in sets],
                         ignore_index=True)
    elif name == "detection":
        knobs = getattr(io.module, "FAMILY_KNOBS", None)
        if knobs is None or any("magnitude" not in data.meta for _, data in sets):
            raise MemgruError(f"the detection experiment needs false-track families with magnitudes; {task} has none")
        rows = pd.concat([detection_rows(chip, data, knobs).assign(**group, **setting)
                          for setting, chip in four_chips() for group, data in sets], ignore_index=True)
    elif name == "unusual":
        unusual = io.load_split(data_dir, "unusual")
        rows = pd.concat([false_alarm_rows(chip, unusual).assign(**setting)
                          for setting, chip in four_chips()], ignore_index=True)
    elif name == "incident":
        if not (data_dir / "incident.npz").is_file():
            raise MemgruError(f"no incident split in {data_dir}: the incident experiment needs trajectory data "
                              "built by this version (python -m memgru data trajectory)")
        incident = io.load_split(data_dir, "incident")
        rows = pd.concat([incident_rows(chip, incident).assign(**setting)
                          for setting, chip in four_chips()], ignore_index=True)
    elif name == "tracks":
        test = io.load_split(data_dir, "test")
        if "magnitude" not in test.meta or "segment" not in test.meta:
            raise MemgruError(f"the tracks experiment needs real tracks cut into windows; {task} has none")
        mod = io.module
        real = test.y == 0
        real_meta = test.meta[real].reset_index(drop=True)
        pieces, piece_meta = mod.track_pieces(mod.load_points(data_dir, "test")[real], real_meta)
        fakes, fake_meta = mod.make_fake_tracks(pieces, piece_meta["source"].to_numpy(),
                                                np.random.default_rng(mod.TRACK_FAKES_SEED))
        x_real, owner_real = test.x[real], mod.track_piece_ids(real_meta)  # the real tracks are the test windows
        x_fake, owner_fake = mod.track_windows(fakes, mod.load_feature_stats(data_dir))
        val = io.load_split(data_dir, "val")
        tables = []
        for setting, chip in four_chips():
            tables.append(track_rows(false_scores(chip, val)[val.y == 0], _track_scores(chip, x_real, owner_real),
                                     _track_scores(chip, x_fake, owner_fake),
                                     fake_meta["magnitude"].to_numpy(),
                                     family=fake_meta["family"].to_numpy()).assign(**setting))
        rows = pd.concat(tables, ignore_index=True)
    elif name == "operating":
        if any("magnitude" not in data.meta for _, data in sets):
            raise MemgruError(f"the operating experiment needs real and false windows with magnitudes; {task} has none")
        val = io.load_split(data_dir, "val")
        unusual = io.load_split(data_dir, "unusual") if (data_dir / "unusual.npz").is_file() else None
        tables = []
        for setting, chip in four_chips():
            val_scores = false_scores(chip, val)[val.y == 0]
            unusual_scores = None if unusual is None else false_scores(chip, unusual)
            tables += [operating_rows(val_scores, false_scores(chip, data), data.y == 1,
                                      data.meta["magnitude"].to_numpy(), unusual_scores,
                                      test_track=_track_ids(data.meta)).assign(**group, **setting)
                       for group, data in sets]
        rows = pd.concat(tables, ignore_index=True)
    else:
        raise ValueError(f"unknown experiment {name!r}")
    rows = rows.assign(task=task)
    return rows if limit is None else rows.assign(limit=limit)  # so the table's command can be given in full
