"""One interface over the three task pipelines: build data, load splits, read a user's file.

The task modules (`audio`, `trajectory`, `soc`) each have their own formats; `task_io(name)` wraps
them so the CLI, the training pipeline and the dashboard treat every task alike. Task modules are
imported lazily (audio pulls librosa, SOC pulls PyBaMM).
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memgru.errors import MemgruError
from memgru.tasks.common import SequenceSet
from memgru.tasks.registry import data_root, task_spec

TRAJECTORY_LABELS = ("true", "false")
"""Trajectory classes: 0 = a real track, 1 = a false (spoofed / synthetic) track."""


@dataclass
class UserInput:
    """A user's file made model-ready, with what is worth reporting about it."""

    x: np.ndarray
    """float32 [W, T, F]: W windows (classification: averaged) or one whole trace (SOC: W = 1)."""
    info: dict[str, Any] = field(default_factory=dict)
    """File facts for the report (duration, sample rate, derived fields, notes ...), JSON-able."""
    truth: Any = None
    """Ground truth when the file carries it: a label (audio file name) or an SOC trace [L] (fraction)."""
    waveform: np.ndarray | None = None
    """Audio only: the decoded mono 22.05 kHz signal (input noise is added to it, then featurised)."""
    stats: dict[str, Any] | None = None
    """Audio only: the normalisation (with its feature config) that made `x`, to featurise a noisy waveform."""


@dataclass(frozen=True)
class TaskIO:
    """The functions memgru needs from a task pipeline."""

    name: str
    """Task name."""
    module: Any
    """The task module: `build_dataset(out_dir, seed=..., **kw) -> dict`, `load_split(data_dir, split)`."""
    stats: Callable[[Path], dict]
    """stats(data_dir) -> JSON-able normalisation/feature settings stored in the checkpoint."""
    read_input: Callable[..., UserInput]
    """read_input(path, stats, **options) -> UserInput (validates the file; MemgruError on bad input); the
    options it takes are `input_options`. Call it through `read_file`, which checks them."""
    labels: tuple[str, ...] | None
    """Class names (None for regression)."""
    test_sets: Callable[[Path], list[tuple[dict[str, Any], SequenceSet]]] | None = None
    """The held-out evaluation sets with their group labels (default: the test split, one group)."""
    signal_noise: Callable[[Path], Callable[[SequenceSet, float, int], SequenceSet]] | None = None
    """signal_noise(data_dir) -> the sweep's input-noise hook (split, SNR dB, seed) -> split, adding the
    noise to the raw signal before the features (audio: the waveform); None: noise on the model inputs."""

    def build(self, out_dir: str | Path, seed: int = 0, **kwargs: Any) -> dict:
        """Build the dataset deterministically into `out_dir`; returns its JSON summary."""
        return self.module.build_dataset(Path(out_dir), seed=seed, **kwargs)

    def check_options(self, **options: Any) -> dict[str, Any]:
        """The reader options that are set (truthy); MemgruError for one this task's reader does not take."""
        chosen = {k: v for k, v in options.items() if v}
        unknown = sorted(k for k in chosen if k not in self.input_options)
        if unknown:
            raise MemgruError(f"{', '.join(unknown)} does not apply to {self.name} files")
        return chosen

    def read_file(self, path: str | Path, stats: dict, **options: Any) -> UserInput:
        """A user's file made model-ready (`read_input`) with the reader `options` (`check_options`)."""
        return self.read_input(Path(path), stats, **self.check_options(**options))

    def load_split(self, data_dir: str | Path, split: str) -> SequenceSet:
        """One built split ('train', 'val', 'test') as a SequenceSet."""
        return self.module.load_split(Path(data_dir), split)

    def evaluation_sets(self, data_dir: Path) -> list[tuple[dict[str, Any], SequenceSet]]:
        """[(group columns, data)]: what the paper-style tables are measured on."""
        if self.test_sets is not None:
            return self.test_sets(data_dir)
        return [({}, self.load_split(data_dir, "test"))]

    def input_noise(self, data_dir: Path) -> tuple[Callable[[SequenceSet, float, int], SequenceSet], str]:
        """The input-noise hook for sweeps over SNR on `data_dir`'s splits and where it adds the noise
        ('signal': the raw recording, before the features; 'features': the normalised model inputs)."""
        if self.signal_noise is not None:
            return self.signal_noise(Path(data_dir)), "signal"
        from memgru.pipeline import perturb_split

        return perturb_split, "features"

    input_options: tuple[str, ...] = ()
    """Keyword options `read_input` takes (trajectory: `allow_missing`)."""
    dataset: str = ""
    """Folder name of the default built dataset under `<repo>/data/` (default: the task name)."""

    def data_dir(self, override: str | Path | None = None) -> Path:
        """Where the built dataset lives: `override`, else `data_root()/<dataset>`."""
        return Path(override) if override else data_root() / (self.dataset or self.name)


def _trajectory() -> TaskIO:
    mod = importlib.import_module("memgru.tasks.trajectory")

    def read(path: Path, stats: dict, allow_missing: bool = False) -> UserInput:
        x, info = mod.read_user_track(Path(path), stats["feature_stats"], allow_missing=allow_missing)
        return UserInput(x=x, info=info)

    return TaskIO(
        name="trajectory",
        module=mod,
        stats=lambda d: {"feature_stats": mod.load_feature_stats(Path(d))},
        read_input=read,
        labels=TRAJECTORY_LABELS,
        input_options=("allow_missing",),
    )


def _soc() -> TaskIO:
    mod = importlib.import_module("memgru.tasks.soc")

    def read(path: Path, stats: dict) -> UserInput:
        inp = mod.read_user_input(Path(path), stats["norm_stats"])
        frame = inp.record.frame
        info = {"duration_s": float(frame["time_s"].iloc[-1] - frame["time_s"].iloc[0]), "samples": len(frame),
                "notes": list(inp.record.notes)}
        return UserInput(x=inp.x, info=info, truth=inp.record.soc)

    def fuds_traces(data_dir: Path) -> list[tuple[dict[str, Any], SequenceSet]]:
        """Each whole FUDS test recording (one sequence of ~23,500 s) at each test temperature."""
        stats = mod.load_stats(Path(data_dir))
        sets = []
        for ambient in mod.TEST_TEMPERATURES_C:
            record = mod.load_trace(Path(data_dir), mod.TEST_CYCLE, ambient)
            meta = pd.DataFrame({"recording": [mod.recording_name(mod.TEST_CYCLE, ambient)]})
            sets.append(({"temperature_c": ambient},
                         SequenceSet(mod.featurise(record.frame, stats)[None], record.soc[None], meta)))
        return sets

    return TaskIO(
        name="soc",
        module=mod,
        stats=lambda d: {"norm_stats": mod.load_stats(Path(d))},
        read_input=read,
        labels=None,
        test_sets=fuds_traces,
    )


def _audio() -> TaskIO:
    mod = importlib.import_module("memgru.tasks.audio")

    def read(path: Path, stats: dict) -> UserInput:
        inp = mod.read_user_audio(Path(path), stats["norm_stats"])
        info = {"window_starts_s": inp.window_starts_s, **_jsonable(inp.info)}
        return UserInput(x=inp.windows, info=info, truth=inp.truth, waveform=inp.signal, stats=stats["norm_stats"])

    def waveform_noise(data_dir: Path) -> Callable[[SequenceSet, float, int], SequenceSet]:
        from memgru.tasks.audio_corpus import waveform_perturb

        return waveform_perturb(data_dir)

    return TaskIO(
        name="audio",
        module=mod,
        stats=lambda d: {"norm_stats": mod.load_stats(Path(d)).to_dict()},
        read_input=read,
        labels=tuple(mod.LABELS),
        signal_noise=waveform_noise,
        dataset="audio-demo",
    )


def _jsonable(obj: Any) -> dict[str, Any]:
    """A dataclass's public fields as plain JSON types."""
    out = {}
    for key, value in vars(obj).items():
        if isinstance(value, np.generic):
            value = value.item()
        if isinstance(value, str | int | float | bool | type(None) | list):
            out[key] = value
    return out


_FACTORIES = {"audio": _audio, "trajectory": _trajectory, "soc": _soc}


def task_io(name: str) -> TaskIO:
    """The pipeline interface of task `name` (imports the task module)."""
    task_spec(name)  # validates the name with a clear error
    return _FACTORIES[name]()
