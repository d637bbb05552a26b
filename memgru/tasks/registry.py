"""The three tasks: their default model architectures and where their pretrained checkpoints live."""

from __future__ import annotations

import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from torch import nn

from memgru.config import ExperimentConfig, ModelConfig, TrainConfig
from memgru.errors import MemgruError

TASK_NAMES = ("audio", "trajectory", "soc")
"""Tasks the CLI and dashboard know."""

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The source checkout (pretrained/, assets/, results/ live here)."""


def _root(variable: str, default: str) -> Path:
    return Path(os.environ.get(variable) or REPO_ROOT / default)


def pretrained_root() -> Path:
    """Folder with one trained task folder per task (`MEMGRU_PRETRAINED_DIR`, default `<repo>/pretrained`)."""
    return _root("MEMGRU_PRETRAINED_DIR", "pretrained")


def results_root() -> Path:
    """Folder of the experiment CSVs (`MEMGRU_RESULTS_DIR`, default `<repo>/results`)."""
    return _root("MEMGRU_RESULTS_DIR", "results")


def baselines_root() -> Path:
    """Folder of the baseline checkpoints, e.g. `<task>_dcnn/float` (`MEMGRU_BASELINES_DIR`, default
    `<repo>/baselines`)."""
    return _root("MEMGRU_BASELINES_DIR", "baselines")


def data_root() -> Path:
    """Folder of the built datasets (`MEMGRU_DATA_DIR`, default `<repo>/data`)."""
    return _root("MEMGRU_DATA_DIR", "data")


@dataclass(frozen=True)
class TaskSpec:
    """What memgru needs to know about a task before any data is loaded."""

    name: str
    """Task name."""
    model: ModelConfig
    """Default (paper-sized) architecture."""
    metric: str
    """Headline metric: `accuracy` (%, higher is better) or `rmse` (%, lower is better)."""
    act_percentile: float = 100.0
    """How a chip of this task calibrates its activation ranges (`QuantConfig.act_percentile`): 100 =
    min/max of the calibration set, below 100 = that percentile of |values|, clipping rare outliers."""

    @property
    def pretrained_dir(self) -> Path:
        """Folder of the bundled pretrained checkpoint."""
        return pretrained_root() / self.name


PAPER_AUDIO_MODEL = ModelConfig(kind="gru_classifier", n_features=64, n_outputs=10, hidden=384, layers=2)
"""The paper's ~1.4 M-parameter audio GRU (2 x 384); the default audio model is its lite version (2 x 128)."""

TRAJECTORY_ACT_PERCENTILE = 99.99
"""The trajectory chips' activation ranges: the 99.99th percentile. Its standardised features are heavy-tailed
(a drift or residual of a few windows runs to tens of standard deviations), so min/max ranges waste most
8-bit levels on outliers: W6/A8 with min/max ranges scores 3.3 points below float on the test set, with
this percentile 0.3 points (validation: 89.06 vs 89.30 %, float 89.38 %)."""

SPECS = {
    "audio": TaskSpec(
        "audio", ModelConfig(kind="gru_classifier", n_features=64, n_outputs=10, hidden=128, layers=2), "accuracy"
    ),
    "trajectory": TaskSpec(
        "trajectory", ModelConfig(kind="gru_classifier", n_features=13, n_outputs=2, hidden=128, layers=2), "accuracy",
        act_percentile=TRAJECTORY_ACT_PERCENTILE,
    ),
    "soc": TaskSpec(
        "soc", ModelConfig(kind="gru_regressor", n_features=3, n_outputs=1, hidden=64, layers=2, dropout=0.0), "rmse"
    ),
}


def task_spec(name: str) -> TaskSpec:
    """The spec of task `name`, or a clear error naming the known tasks."""
    if name not in SPECS:
        raise MemgruError(f"unknown task {name!r}; choose from {', '.join(TASK_NAMES)}")
    return SPECS[name]


DEFAULT_TRAIN = {
    "audio": TrainConfig(epochs=30, batch_size=32, lr=2e-3, seed=0, patience=8),
    # 4 epochs over 10 copies of every real training window (trajectory.TRAIN_COPIES), each with its own fake
    "trajectory": TrainConfig(epochs=4, batch_size=128, lr=3e-3, seed=0, patience=6),
    "soc": TrainConfig(epochs=10, batch_size=16, lr=2e-3, seed=0, patience=8, tbptt_steps=500),
}
"""Training settings of the bundled models (the `train` command's defaults)."""


def _read_json(path: str | Path) -> object:
    try:
        return json.loads(Path(path).read_text())
    except OSError as exc:
        raise MemgruError(f"cannot read config {path}: {exc.strerror}") from exc
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MemgruError(f"config {path} is not valid JSON") from exc


def read_experiment_config(path: str | Path) -> ExperimentConfig:
    """An ExperimentConfig (task, model, train) from a JSON file."""
    data = _read_json(path)
    if not isinstance(data, dict) or "task" not in data:
        raise MemgruError(f"config {path} must be a JSON object with task, model and train")
    task_spec(str(data["task"]))
    return ExperimentConfig.from_dict(data)


def read_model_config(path: str | Path) -> ModelConfig:
    """A ModelConfig from a JSON file holding either a ModelConfig or a whole experiment config."""
    data = _read_json(path)
    if isinstance(data, dict) and "model" in data:
        return ExperimentConfig.from_dict(data).model
    return ModelConfig.from_dict(data)


def load_task_model(task: str, config: str | Path | None = None, seed: int = 0) -> tuple[nn.Module, str]:
    """The task's model in eval mode and a sentence saying where it came from.

    Without `config`: the bundled pretrained checkpoint when there is one, else a seeded random
    initialisation of the task's default architecture (said so in the sentence). With `config`:
    a seeded random initialisation of that architecture.
    """
    from memgru.checkpoint import load_checkpoint
    from memgru.models import build_model

    spec = task_spec(task)
    if config is None and (spec.pretrained_dir / "config.json").is_file():
        model, _ = load_checkpoint(spec.pretrained_dir, task=task)
        return model, f"pretrained checkpoint {spec.pretrained_dir}"
    cfg = read_model_config(config) if config else spec.model
    with torch.random.fork_rng(devices=[]):  # seeded, without touching the caller's random state
        torch.manual_seed(seed)
        model = build_model(cfg).eval()
    source = f"config {config}" if config else "the task's default architecture"
    return model, f"random init (seed {seed}) of {source}; no trained weights"
