"""Task-level jobs behind the CLI and the dashboard: train a task's models, predict on a user's file.

A trained task folder (e.g. `pretrained/trajectory/`) holds the deployed, noise-trained checkpoint
(`config.json`, `model.safetensors`), the float-trained reference in `float/`, both training logs
(`log_float.jsonl`, `log_noise.jsonl`: one JSON line per epoch) and `calibration.npz`: a few
validation inputs used to calibrate activation and ADC ranges whenever the model is programmed.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from memgru.checkpoint import load_checkpoint, read_config, save_checkpoint
from memgru.config import FLOAT_BITS, DeviceConfig, ExperimentConfig, ModelConfig, TrainConfig
from memgru.errors import MemgruError
from memgru.evaluate import Perturb, chip_model, sweep
from memgru.layers import crossbar_layers
from memgru.models import build_model, count_parameters
from memgru.tasks.common import SequenceSet, load_arrays
from memgru.tasks.io import UserInput, task_io
from memgru.tasks.registry import task_spec
from memgru.train import clamp_regression, evaluate_model, metric, predict, task_kind, train_model

CALIBRATION_FILE = "calibration.npz"
"""Calibration inputs saved next to a checkpoint."""
CALIBRATION_SIZE = 128
"""Validation sequences kept for calibration."""
CALIBRATION_STEPS = 1000
"""Longest calibration sequence (time steps): longer validation sequences (SOC's 12,000-s windows) are cut
into pieces of this length first, so calibrating a chip takes ~1 s rather than a whole-trace run."""
DEFAULT_NOISE = 0.1
"""Weight-noise injection η of the deployed model when the config sets none."""


def plain_copy(model: nn.Module, cfg: ModelConfig) -> nn.Module:
    """The float `torch.nn` model with the (master) weights of a possibly converted `model`."""
    plain = build_model(cfg)
    if not crossbar_layers(model):
        plain.load_state_dict(model.state_dict())
        return plain.eval()
    state = {k: v for k, v in model.state_dict().items() if not k.endswith((".lo", ".hi"))}
    plain.load_state_dict(state)
    return plain.eval()


def calibration_inputs(x: np.ndarray, seed: int = 0) -> np.ndarray:
    """The calibration set drawn from validation inputs `x` [N, T, F]: sequences longer than
    `CALIBRATION_STEPS` cut into consecutive pieces of that length (the remainder dropped), then
    `CALIBRATION_SIZE` of them (seeded choice, in order) -> float32 [M, min(T, CALIBRATION_STEPS), F]."""
    x = np.asarray(x, np.float32)
    if x.shape[1] > CALIBRATION_STEPS:
        pieces = x.shape[1] // CALIBRATION_STEPS
        x = x[:, : pieces * CALIBRATION_STEPS].reshape(-1, CALIBRATION_STEPS, x.shape[2])
    rng = np.random.default_rng(seed)
    return x[np.sort(rng.choice(len(x), size=min(CALIBRATION_SIZE, len(x)), replace=False))]


def save_calibration(folder: Path, data: SequenceSet, seed: int = 0) -> None:
    """Save `calibration_inputs` of `data` as the checkpoint's calibration set."""
    np.savez_compressed(folder / CALIBRATION_FILE, x=calibration_inputs(data.x, seed))


def load_calibration(folder: Path, fallback: np.ndarray | None = None) -> np.ndarray:
    """The calibration inputs of a checkpoint folder (or `fallback` when it has none)."""
    path = Path(folder) / CALIBRATION_FILE
    if path.is_file():
        x = load_arrays(path, ("x",), "calibration set")["x"]
        if x.ndim != 3 or not np.issubdtype(x.dtype, np.floating):
            raise MemgruError(f"calibration set {path} must hold float inputs [N, T, F], got {x.dtype} {x.shape}")
        return x
    if fallback is None:
        raise MemgruError(f"checkpoint {folder} has no {CALIBRATION_FILE}")
    return fallback


def training_recipe(config: dict[str, Any]) -> dict[str, Any]:
    """How a checkpoint was trained, from its config: run, train settings, metrics and, recursively, the
    recipe of the checkpoint it started from. A fine-tuned model stores its starting point's recipe, so
    the chain stays reproducible after the starting checkpoint is overwritten (a model fine-tuned in place)."""
    extra = config.get("extra", {})
    return {key: extra.get(key) for key in ("run", "train", "metrics", "initialised_from", "initialised_from_recipe")}


def train_task(
    task: str,
    exp: ExperimentConfig,
    out_dir: Path,
    data_dir: Path | None = None,
    runs: tuple[str, ...] = ("float", "noise"),
    progress: Callable[[str], None] | None = None,
    init_from: Path | None = None,
) -> dict[str, Any]:
    """Train the task's float and noise-trained models and write the task folder; returns a summary.

    `float` trains without noise into `out_dir/float/`; `noise` trains with weight-noise injection
    (η = exp.train.weight_noise, or `DEFAULT_NOISE` when that is 0) into `out_dir/` (the deployed
    checkpoint). Both start from the same seed, or from the weights of the checkpoint `init_from`
    (noise-aware fine-tuning of a float model). Metrics on val and test go into each config.
    """
    io = task_io(task)
    data_dir = io.data_dir(data_dir)
    train, val = (io.load_split(data_dir, s) for s in ("train", "val"))
    model_cfg = exp.model
    if model_cfg.n_features != train.x.shape[-1]:
        raise MemgruError(
            f"the data has {train.x.shape[-1]} features per step but the model config expects {model_cfg.n_features}"
        )
    stats = io.stats(data_dir)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    summary: dict[str, Any] = {"task": task, "data_dir": str(data_dir), "runs": {}}
    for run in runs:
        if run not in ("float", "noise"):
            raise MemgruError(f"unknown training run {run!r}; choose float and/or noise")
        eta = 0.0 if run == "float" else (exp.train.weight_noise or DEFAULT_NOISE)
        cfg = TrainConfig.from_dict({**exp.train.to_dict(), "weight_noise": eta})
        folder = out_dir / "float" if run == "float" else out_dir
        folder.mkdir(parents=True, exist_ok=True)
        torch.manual_seed(cfg.seed)
        start = time.perf_counter()
        report = (lambda row, run=run: progress(
            f"[{run}] epoch {row['epoch']}: train loss {row['train_loss']:.4f}, val loss {row['val_loss']:.4f}, "
            f"val metric {row['val_metric']:.3f}"
            + (f", under weight noise {row['val_metric_noisy']:.3f}" if "val_metric_noisy" in row else ""))
        ) if progress else None
        start_model = build_model(model_cfg)
        recipe = None
        if init_from is not None:
            init_model, init_config = load_checkpoint(init_from, task=task)
            start_model = plain_copy(init_model, model_cfg)
            recipe = training_recipe(init_config)
        trained, history = train_model(start_model, train, val, cfg,
                                       log_path=out_dir / f"log_{run}.jsonl", progress=report)
        minutes = (time.perf_counter() - start) / 60
        plain = plain_copy(trained, model_cfg)
        metrics = {
            "val": evaluate_model(plain, val)[1],
            "test": test_metrics(plain, io.evaluation_sets(data_dir)),
            "metric": task_spec(task).metric,
            "epochs_run": len(history),
            "train_minutes": round(minutes, 2),
            "parameters": count_parameters(plain),
        }
        extra = {"stats": stats, "labels": list(io.labels) if io.labels else None, "train": cfg.to_dict(),
                 "run": run, "metrics": metrics,
                 "initialised_from": str(init_from) if init_from else None,
                 "initialised_from_recipe": recipe,
                 "splits": {"train": len(train), "val": len(val)}}
        save_checkpoint(folder, plain, model_cfg, task=task, extra=extra)
        save_calibration(folder, val, seed=cfg.seed)
        summary["runs"][run] = {"folder": str(folder), **metrics}
    return summary


def input_noise(x: np.ndarray, snr_db: float, seed: int) -> np.ndarray:
    """Additive white Gaussian noise at `snr_db` relative to each sequence's mean power (model inputs)."""
    rng = np.random.default_rng(seed)
    power = np.mean(x.astype(np.float64) ** 2, axis=(1, 2), keepdims=True)
    noise = rng.standard_normal(x.shape) * np.sqrt(power / 10 ** (snr_db / 10))
    return (x + noise).astype(np.float32)


def noisy_user_input(user: UserInput, snr_db: float, seed: int) -> np.ndarray:
    """The model input of a user's file heard with white noise at `snr_db` (seeded): added to the waveform
    before the features for audio (`UserInput.waveform`), to the model inputs otherwise (`input_noise`)."""
    if user.waveform is not None and user.stats is not None:
        from memgru.tasks.audio import noisy_windows

        return noisy_windows(user.waveform, snr_db, seed, user.stats)
    return input_noise(user.x, snr_db, seed)


def perturb_split(data: SequenceSet, snr_db: float, seed: int) -> SequenceSet:
    """`data` with `input_noise` at `snr_db` (the sweep hook for input SNR)."""
    return SequenceSet(input_noise(data.x, snr_db, seed), data.y, data.meta)


def task_act_percentile(folder: Path | str) -> float:
    """How chips of the checkpoint in `folder` calibrate activation ranges (percentile; 100 = min/max): the
    calibration chosen for it on validation and stored in its config (`extra.act_percentile`, written by
    `python -m memgru calibrate`), else its task's `TaskSpec.act_percentile`."""
    return config_act_percentile(read_config(folder), folder)


def config_act_percentile(config: dict[str, Any], folder: Path | str) -> float:
    """`task_act_percentile` from a checkpoint config already read (`folder` names it in errors)."""
    extra = config.get("extra")
    stored = extra.get("act_percentile") if isinstance(extra, dict) else None
    if stored is None:
        return task_spec(str(config["task"])).act_percentile
    if isinstance(stored, bool) or not isinstance(stored, int | float) or not 50.0 < stored <= 100.0:
        raise MemgruError(f"checkpoint {folder} stores an invalid activation calibration extra.act_percentile="
                          f"{stored!r} (expected a percentile in (50, 100])")
    return float(stored)


def deployed_model(
    model: nn.Module, folder: Path, weight_bits: int, act_bits: int, sigma: float, seed: int,
    device: DeviceConfig | None = None, gate_bits: int | None = None, act_percentile: float | None = None,
) -> nn.Module:
    """The checkpoint's model as evaluated: float as is, else programmed and calibrated on its calibration set
    (`gate_bits`: the gate outputs' own precision, see `QuantConfig.gate_bits`; `act_percentile`: activation
    range calibration, default the task's, see `task_act_percentile`)."""
    if weight_bits >= FLOAT_BITS and act_bits >= FLOAT_BITS and sigma == 0 and device is None:
        return model.eval()
    percentile = task_act_percentile(folder) if act_percentile is None else act_percentile
    return chip_model(model, weight_bits, act_bits, sigma, seed, load_calibration(folder), device,
                      act_percentile=percentile, gate_bits=gate_bits)


def input_stats(config: dict[str, Any], folder: Path | str) -> dict[str, Any]:
    """The input statistics (feature normalisation) a checkpoint's config carries in `extra.stats`;
    a clear error for a checkpoint without them (it could not read a user's file)."""
    extra = config.get("extra")
    stats = extra.get("stats") if isinstance(extra, dict) else None
    if not isinstance(stats, dict) or not stats:
        raise MemgruError(f"checkpoint {folder} has no input statistics (extra.stats), so it cannot read files; "
                          "use a task folder written by `python -m memgru train`")
    return stats


def predict_file(
    task: str,
    path: str | Path,
    checkpoint: str | Path | None = None,
    weight_bits: int = FLOAT_BITS,
    act_bits: int = FLOAT_BITS,
    sigma: float = 0.0,
    snr_db: float | None = None,
    seed: int = 0,
    device: DeviceConfig | None = None,
    gate_bits: int | None = None,
    threshold: float | None = None,
    allow_missing: bool = False,
) -> dict[str, Any]:
    """Predict on a user's file with the task's checkpoint at a hardware setting (the CLI's `predict`).

    `threshold` (two-class tasks): see `prediction`. `allow_missing` (trajectory): accept empty cells and
    interpolate them (`trajectory.read_track_file`); refused for tasks whose files have no cells."""
    check_threshold(task, threshold)
    io = task_io(task)
    options = io.check_options(allow_missing=allow_missing)  # before the checkpoint is loaded
    folder = Path(checkpoint) if checkpoint else task_spec(task).pretrained_dir
    model, config = load_checkpoint(folder, task=task)
    user = io.read_input(Path(path), input_stats(config, folder), **options)
    percentile = config_act_percentile(config, folder)
    chip = deployed_model(model, folder, weight_bits, act_bits, sigma, seed, device, gate_bits, percentile)
    setting = {"weight_bits": weight_bits, "act_bits": act_bits, "sigma": sigma, "snr_db": snr_db, "seed": seed}
    if gate_bits is not None:
        setting["gate_bits"] = gate_bits
    if act_bits < FLOAT_BITS:  # how the chip's activation ranges were calibrated (`calibrate`)
        setting["act_percentile"] = percentile
    return {"task": task, **setting, "file": Path(path).name,
            **prediction(task, chip, user, snr_db, seed, threshold)}


def check_threshold(task: str, threshold: float | None) -> None:
    """Refuse a decision threshold that is out of (0, 1) or given for a task without exactly two labels."""
    if threshold is None:
        return
    labels = task_io(task).labels or ()
    if len(labels) != 2:
        raise MemgruError(f"a decision threshold needs a two-class task; {task} has "
                          f"{len(labels) or 'no'} labels")
    if not 0.0 < threshold < 1.0:
        raise MemgruError(f"the decision threshold must be between 0 and 1 (exclusive), got {threshold}")


def two_class_verdict(task: str, probabilities: dict[str, float], threshold: float) -> str:
    """The label of a two-class task's file at a decision threshold: the second label (trajectory: "false")
    when its averaged probability exceeds `threshold`, else the first."""
    check_threshold(task, threshold)
    first, second = task_io(task).labels
    return second if probabilities[second] > threshold else first


def window_scores(result: dict[str, Any], label: str) -> list[float]:
    """The probability of `label` in each window of a `prediction` result (e.g. P(false) of a track's windows)."""
    at = list(result["probabilities"]).index(label)
    return [window[at] for window in result["window_probabilities"]]


def flagged_windows(scores: list[float], starts_s: list[float], threshold: float) -> list[str]:
    """Where a track's verdict comes from, in words: how many windows' P(false) `scores` pass `threshold`, the
    highest and where it starts, and the longest run of consecutive windows over the threshold (minutes from the
    first window start, `starts_s` in s; positions left out when the starts do not match the scores)."""
    from memgru.tasks.trajectory_tracks import true_runs

    timed = len(starts_s) == len(scores) > 0
    minutes = [(t - starts_s[0]) / 60.0 for t in starts_s] if timed else []
    worst = max(range(len(scores)), key=scores.__getitem__)
    where = f" (window starting {minutes[worst]:.1f} min in)" if timed else ""
    lines = [f"windows with P(false) > {threshold:g}: {sum(v > threshold for v in scores)} of {len(scores)}; "
             f"highest {scores[worst]:.3f}{where}"]
    runs = true_runs(np.asarray(scores) > threshold)
    if runs and timed:
        a, b = max(runs, key=lambda r: r[1] - r[0])
        lines.append(f"longest run of such windows: {b - a} in a row, starting {minutes[a]:.1f} to "
                     f"{minutes[b - 1]:.1f} min in")
    return lines


def prediction(task: str, model: nn.Module, user: UserInput, snr_db: float | None = None, seed: int = 0,
               threshold: float | None = None) -> dict[str, Any]:
    """What `model` (float or programmed) says about a prepared user input.

    Classification: `label`, `probabilities` {label: p} averaged over the file's windows, `windows`,
    `window_probabilities` (one [p per label] list per window, in the file's order: which windows drove
    the verdict), `truth` (from the file name, or None). The label is the most probable one, or, with `threshold`
    (two-class tasks only, e.g. an operating point of the trajectory card), the second label when its
    averaged probability exceeds `threshold` (then also `threshold` in the result). SOC: `soc` (the
    trace in %, one value per second) and
    `rmse` (percentage points, None without truth in the file). `snr_db` adds white noise first
    (seeded; to the waveform for audio, see `noisy_user_input`). `input` carries the reader's facts about the file.
    """
    x = user.x if snr_db is None else noisy_user_input(user, snr_db, seed)
    out = predict(model, x)
    labels = task_io(task).labels
    result: dict[str, Any] = {"input": user.info}
    if labels:
        per_window = torch.softmax(out, dim=-1)
        probs = per_window.mean(dim=0)
        probabilities = {lab: float(p) for lab, p in zip(labels, probs, strict=True)}
        result["label"] = (labels[int(probs.argmax())] if threshold is None
                           else two_class_verdict(task, probabilities, threshold))
        result["probabilities"] = probabilities
        if threshold is not None:
            result["threshold"] = threshold
        result["windows"] = len(x)
        result["window_probabilities"] = [[round(float(p), 6) for p in row] for row in per_window]
        result["truth"] = user.truth
        return result
    flat = out.reshape(-1)
    result["soc"] = [round(float(v) * 100, 3) for v in clamp_regression(flat)]
    result["rmse"] = None if user.truth is None else metric("regression", flat, user.truth)
    return result


def subset_indices(n: int, limit: int | None) -> np.ndarray:
    """Indices (sorted) of the sequences `subset` keeps out of `n`: all, or a seeded choice of `limit`."""
    if limit is None or n <= limit:
        return np.arange(n)
    return np.sort(np.random.default_rng(0).choice(n, size=limit, replace=False))


def take(data: SequenceSet, pick: np.ndarray) -> SequenceSet:
    """The sequences `pick` (indices) of `data`, in that order."""
    return SequenceSet(data.x[pick], data.y[pick], data.meta.iloc[pick].reset_index(drop=True))


def subset(data: SequenceSet, limit: int | None) -> SequenceSet:
    """At most `limit` sequences of `data` (a seeded random choice kept in the original order)."""
    if limit is None or len(data) <= limit:
        return data
    return take(data, subset_indices(len(data), limit))


def evaluate_sets(
    model: nn.Module,
    sets: list[tuple[dict[str, Any], SequenceSet]],
    calibration: np.ndarray,
    limit: int | None = None,
    progress: Callable[[float], None] | None = None,
    perturb: Perturb = perturb_split,
    **grid: Any,
) -> pd.DataFrame:
    """`memgru.evaluate.sweep` over each evaluation set (group columns added, e.g. `temperature_c`).

    `grid` takes sweep's settings (bits, sigmas, snrs, seeds, act_bits, device); input noise uses
    `perturb` (default `perturb_split`: noise on the model inputs; see `TaskIO.input_noise`). `limit` caps
    the sequences per set; `progress` gets the fraction done.
    """
    tables = []
    for i, (group, data) in enumerate(sets):
        step = None if progress is None else (lambda f, i=i: progress((i + f) / len(sets)))
        rows = sweep(model, subset(data, limit), calibration, perturb=perturb, progress=step, **grid)
        tables.append(rows.assign(**group))
    return pd.concat(tables, ignore_index=True)


def test_metrics(model: nn.Module, sets: list[tuple[dict[str, Any], SequenceSet]]) -> float | dict[str, float]:
    """The metric on the evaluation sets: one number, or one per group (e.g. 'temperature_c=25.0')."""
    values = {
        ",".join(f"{k}={v}" for k, v in group.items()): metric(task_kind(data), predict(model, data.x), data.y)
        for group, data in sets
    }
    return values[""] if list(values) == [""] else values
