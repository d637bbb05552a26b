"""The three tasks: their default model architectures and where their pretrained checkpoints live."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from memgru.config import ModelConfig
from memgru.errors import MemgruError

TASK_NAMES = ("audio", "trajectory", "soc")
"""Tasks the CLI and dashboard know."""

REPO_ROOT = Path(__file__).resolve().parents[2]
"""The source checkout (pretrained/, assets/, results/ live here)."""


@dataclass(frozen=True)
class TaskSpec:
    """What memgru needs to know about a task before any data is loaded."""

    name: str
    """Task name."""
    model: ModelConfig
    """Default (paper-sized) architecture."""
    metric: str
    """Headline metric: `accuracy` (%, higher is better) or `rmse` (%, lower is better)."""

    @property
    def pretrained_dir(self) -> Path:
        """Folder of the bundled pretrained checkpoint."""
        return REPO_ROOT / "pretrained" / self.name


SPECS = {
    "audio": TaskSpec(
        "audio", ModelConfig(kind="gru_classifier", n_features=64, n_outputs=10, hidden=384, layers=2), "accuracy"
    ),
    "trajectory": TaskSpec(
        "trajectory", ModelConfig(kind="gru_classifier", n_features=10, n_outputs=2, hidden=128, layers=2), "accuracy"
    ),
    "soc": TaskSpec("soc", ModelConfig(kind="gru_regressor", n_features=3, n_outputs=1, hidden=128, layers=2), "rmse"),
}


def task_spec(name: str) -> TaskSpec:
    """The spec of task `name`, or a clear error naming the known tasks."""
    if name not in SPECS:
        raise MemgruError(f"unknown task {name!r}; choose from {', '.join(TASK_NAMES)}")
    return SPECS[name]
