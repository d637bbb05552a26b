"""Where the dashboard's inputs live and how they are read: checkpoints, results CSVs, training logs, data.

Plain Python (no Streamlit), so it is testable on its own. Each folder can be moved with an
environment variable (tests point them at temporary folders):

- `MEMGRU_PRETRAINED_DIR` (default `<repo>/pretrained`): `<task>/config.json`, `model.safetensors`,
  `log_float.jsonl`, `log_noise.jsonl`;
- `MEMGRU_RESULTS_DIR` (default `<repo>/results`): `<task>_*.csv` written by experiment commands;
- `MEMGRU_DATA_DIR` (default `<repo>/data`): `<task>/{train,val,test}.npz|.csv` built by `memgru data`.

Live recomputation (`recompute`) mirrors `python -m memgru evaluate`: same calibration inputs,
evaluation sets and input-noise hook (`memgru.pipeline`).
"""

from __future__ import annotations

import io
import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pandas as pd
from torch import nn

from memgru.checkpoint import read_config
from memgru.config import DeviceConfig
from memgru.errors import MemgruError
from memgru.experiments import TABLE_EXPERIMENTS
from memgru.pipeline import calibration_inputs, evaluate_sets, load_calibration, task_act_percentile
from memgru.plots import AXIS_LABELS, LOG_COLUMNS, metric_column
from memgru.tasks.io import task_io
from memgru.tasks.registry import pretrained_root, results_root, task_spec

LOG_RUNS = {"float": "log_float.jsonl", "noise": "log_noise.jsonl"}
"""Training runs shown in the training view and their log file names next to the checkpoint."""
MAX_RESULTS_BYTES = 20 * 1024 * 1024
"""Largest results CSV read (uploads are also capped by Streamlit's server.maxUploadSize)."""


@dataclass(frozen=True)
class CheckpointStatus:
    """What the home page says about a task's pretrained checkpoint."""

    task: str
    """Task name."""
    folder: Path
    """Where the checkpoint is expected."""
    config: dict[str, Any] | None
    """Its config.json (validated) when present and readable."""
    error: str | None
    """Why a present config could not be read (None when fine or absent)."""

    @property
    def metrics(self) -> dict[str, Any]:
        """The model card's metrics (`extra.metrics` of config.json), empty when none."""
        metrics = ((self.config or {}).get("extra") or {}).get("metrics") or {}
        return metrics if isinstance(metrics, dict) else {}


def checkpoint_status(task: str, root: Path | None = None) -> CheckpointStatus:
    """Whether `task` has a pretrained checkpoint under `root` and what its config says."""
    folder = (root or pretrained_root()) / task
    if not (folder / "config.json").is_file():
        return CheckpointStatus(task, folder, None, None)
    try:
        return CheckpointStatus(task, folder, read_config(folder), None)
    except MemgruError as exc:
        return CheckpointStatus(task, folder, None, str(exc))


def parse_results(text: str, name: str) -> pd.DataFrame:
    """A results table (CSV text as written by `memgru evaluate --out` or an experiment command), checked."""
    if not text.strip():
        raise MemgruError(f"{name} is empty")
    try:
        rows = pd.read_csv(io.StringIO(text))
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as exc:
        raise MemgruError(f"{name} is not a readable CSV table ({str(exc).splitlines()[0]})") from exc
    try:
        value = metric_column(rows)
    except MemgruError as exc:
        raise MemgruError(f"{name}: {exc}") from exc
    axes = [c for c in AXIS_LABELS if c in rows.columns]
    if not axes:
        raise MemgruError(f"{name} has none of the setting columns {', '.join(AXIS_LABELS)}")
    for col in [value, *axes]:
        if not pd.api.types.is_numeric_dtype(rows[col]):
            raise MemgruError(f"{name}: column {col!r} must hold numbers")
    return rows


def _read_text(path: Path, max_bytes: int) -> str:
    size = path.stat().st_size
    if size > max_bytes:
        raise MemgruError(f"{path.name} is {size / 1e6:.1f} MB; the limit is {max_bytes / 1e6:.0f} MB")
    try:
        return path.read_text()
    except UnicodeDecodeError as exc:
        raise MemgruError(f"{path.name} is not a text file") from exc


def results_files(task: str, root: Path | None = None) -> list[Path]:
    """The results CSVs of `task` (`<task>_*.csv`), sorted by name."""
    return sorted((root or results_root()).glob(f"{task}_*.csv"))


def curve_results_files(task: str, root: Path | None = None) -> tuple[list[Path], list[Path]]:
    """`task`'s results CSVs split into metric curves (bits, σ, SNR, `evaluate --out` tables ...) and the
    per-case tables of `TABLE_EXPERIMENTS` (per family, flight, threshold or stretch), which are no curves."""
    tables = {f"{task}_{name}.csv" for name in TABLE_EXPERIMENTS}
    files = results_files(task, root)
    return [f for f in files if f.name not in tables], [f for f in files if f.name in tables]


def read_results(path: Path) -> pd.DataFrame:
    """One results CSV from disk, checked like an upload."""
    return parse_results(_read_text(path, MAX_RESULTS_BYTES), path.name)


def read_training_log(path: Path) -> pd.DataFrame:
    """A JSON-lines training log (one object per epoch with `LOG_COLUMNS`), as a DataFrame."""
    rows = []
    for number, line in enumerate(_read_text(path, MAX_RESULTS_BYTES).splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise MemgruError(f"{path.name} line {number} is not JSON") from exc
        if not isinstance(row, dict) or any(k not in row for k in LOG_COLUMNS):
            raise MemgruError(f"{path.name} line {number} lacks one of {', '.join(LOG_COLUMNS)}")
        rows.append(row)
    if not rows:
        raise MemgruError(f"{path.name} holds no epochs")
    return pd.DataFrame(rows)


def has_training_logs(task: str, root: Path | None = None) -> bool:
    """True when `task` has at least one training log."""
    return any(((root or pretrained_root()) / task / name).is_file() for name in LOG_RUNS.values())


def training_logs(task: str, root: Path | None = None) -> pd.DataFrame | None:
    """All training logs of `task` in one table with a `run` column ('float', 'noise'); None when none exist."""
    folder = (root or pretrained_root()) / task
    parts = [read_training_log(folder / name).assign(run=run)
             for run, name in LOG_RUNS.items() if (folder / name).is_file()]
    return pd.concat(parts, ignore_index=True) if parts else None


def live_inputs_missing(task: str) -> list[str]:
    """What live recomputation of `task` still lacks (empty when the checkpoint and test data exist)."""
    missing = []
    if not (pretrained_root() / task / "config.json").is_file():
        missing.append(f"a trained checkpoint in {pretrained_root() / task} (`python -m memgru train --task {task}`)")
    folder = task_io(task).data_dir()
    if not all((folder / f"test{ext}").is_file() for ext in (".npz", ".csv")):
        dataset = "audio-demo" if task == "audio" else task
        missing.append(f"the built test data in {folder} (`python -m memgru data {dataset}`)")
    return missing


def recompute(
    task: str, model: nn.Module, axis: str, grid: list, *, weight_bits: int, act_bits: int, sigma: float,
    snr_db: float | None, seeds: range, device: DeviceConfig, limit: int,
    progress: Callable[[float], None] | None = None, gate_bits: int | None = None,
) -> pd.DataFrame:
    """The metric of `model` on the task's evaluation sets, sweeping `axis` (weight_bits, sigma or snr_db)
    over `grid`, the other settings fixed at the given values (`progress` gets the fraction done).

    Calibration inputs are the checkpoint's `calibration.npz` at its activation calibration (else the validation
    split at the task's); each evaluation set (SOC: one per test temperature) is cut to `limit` sequences. Same rows as
    `python -m memgru evaluate` (plus group columns such as `temperature_c`).
    """
    io = task_io(task)
    folder = io.data_dir()
    try:
        calibration = load_calibration(pretrained_root() / task)
        percentile = task_act_percentile(pretrained_root() / task)  # the checkpoint's, chosen by `calibrate`
    except MemgruError:
        calibration = calibration_inputs(io.load_split(folder, "val").x)
        percentile = task_spec(task).act_percentile
    return evaluate_sets(
        model, io.evaluation_sets(folder), calibration, limit=limit, progress=progress,
        perturb=io.input_noise(folder)[0],
        bits=grid if axis == "weight_bits" else [weight_bits], sigmas=grid if axis == "sigma" else [sigma],
        snrs=grid if axis == "snr_db" else [snr_db], seeds=seeds, act_bits=act_bits, device=device, gate_bits=gate_bits,
        act_percentile=percentile,
    )
