"""User inputs of the task pages: a bundled sample, an upload or a recording, read by memgru's task readers.

Readers take a path, so an input's bytes are written to a temporary file with the original name (the
audio reader takes the ground truth from it). What a reader makes of a file is cached per content
(sha256), so moving a slider never reads or featurises a file again.
"""

from __future__ import annotations

import hashlib
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
import pandas as pd
import streamlit as st

from memgru.errors import MemgruError
from memgru.tasks.io import UserInput, task_io

ASSETS = Path(__file__).resolve().parents[1] / "assets"
"""Bundled sample files, one folder per task."""
SAMPLE, UPLOAD, RECORD = "bundled sample", "upload a file", "record with the microphone"
"""Input sources offered by `choose_input`."""
T = TypeVar("T")


@dataclass(frozen=True)
class InputFile:
    """One user input: its file name and content."""

    name: str
    """File name (only the last path component is used)."""
    data: bytes
    """File content."""

    @cached_property
    def sha256(self) -> str:
        """sha256 of the content (the cache key of everything computed from it)."""
        return hashlib.sha256(self.data).hexdigest()

    @property
    def key(self) -> str:
        """Identifies the input in caches: content and name (the name can carry the ground truth)."""
        return f"{self.sha256}:{self.name}"


@contextmanager
def as_file(item: InputFile) -> Iterator[Path]:
    """A temporary file holding the input under its original name (deleted afterwards)."""
    name = Path(item.name).name or "input"
    with tempfile.TemporaryDirectory(prefix="memgru_") as folder:
        path = Path(folder) / name
        path.write_bytes(item.data)
        yield path


def with_file(item: InputFile, read: Callable[[Path], T]) -> T:
    """`read(path)` of the input written to a temporary file."""
    with as_file(item) as path:
        return read(path)


@st.cache_data(show_spinner="Reading the file…", max_entries=16)
def _read_input(task: str, key: str, name: str, stats: dict[str, Any], options: dict[str, Any],
                _data: bytes) -> UserInput:
    return with_file(InputFile(name, _data), lambda path: task_io(task).read_file(path, stats, **options))


def read_input(task: str, item: InputFile, stats: dict[str, Any], **options: Any) -> UserInput:
    """The task reader's model-ready input for this file with the checkpoint's `stats` and the reader's
    `options` (`TaskIO.read_file`), cached per content and options.

    Bad files raise MemgruError (one line naming the problem).
    """
    return _read_input(task, item.key, item.name, stats, options, _data=item.data)


@st.cache_data(show_spinner=False)
def samples(task: str) -> pd.DataFrame:
    """The task's bundled samples: `assets/<task>/samples.csv` when it exists, else every CSV in the folder."""
    folder = ASSETS / task
    if (folder / "samples.csv").is_file():
        return pd.read_csv(folder / "samples.csv")
    return pd.DataFrame({"file": sorted(p.name for p in folder.glob("*.csv"))})


def sample_file(task: str, name: str) -> InputFile:
    """A bundled sample as an input."""
    return InputFile(name, (ASSETS / task / name).read_bytes())


def choose_input(
    task: str, types: list[str], key: str, *, record: bool = False, format_sample: Callable[[str], str] = str,
    upload_help: str | None = None,
) -> InputFile | None:
    """Source choice (bundled sample / upload / microphone when `record`) and its widget; the chosen input,
    or None while the user has not given one. Widget keys start with `key`."""
    sources = [SAMPLE, UPLOAD, *([RECORD] if record else [])]
    source = st.radio("Input", sources, key=f"{key}_source", horizontal=True)
    if source == SAMPLE:
        names = samples(task)["file"].tolist()
        name = st.selectbox("Sample", names, key=f"{key}_sample", format_func=format_sample)
        return sample_file(task, name)
    if source == UPLOAD:
        upload = st.file_uploader(f"{task.capitalize()} file ({', '.join(types)})", type=types, key=f"{key}_upload",
                                  help=upload_help)
        return None if upload is None else InputFile(upload.name, upload.getvalue())
    recording = st.audio_input("Record a sound", key=f"{key}_record")
    return None if recording is None else InputFile("recording.wav", recording.getvalue())


def read_or_stop(task: str, item: InputFile, stats: dict[str, Any], **options: Any) -> UserInput:
    """`read_input`, or an error message naming the problem and the end of this run (the page stays usable)."""
    try:
        return read_input(task, item, stats, **options)
    except MemgruError as exc:
        st.error(f"Cannot use {item.name}: {exc}")
        st.stop()


@st.cache_data(show_spinner=False, max_entries=16)
def _track_reports(key: str, name: str, allow_missing: bool, _data: bytes) -> pd.DataFrame:
    from memgru.tasks.trajectory import read_track_file

    return with_file(InputFile(name, _data), lambda path: read_track_file(path, allow_missing=allow_missing)[0])


def track_reports(item: InputFile, *, allow_missing: bool = False) -> pd.DataFrame:
    """The validated reports of a track file (time_s, latitude, longitude, altitude, ...; NaN in empty cells
    with `allow_missing`), cached per content."""
    return _track_reports(item.key, item.name, allow_missing, _data=item.data)


@st.cache_data(show_spinner=False, max_entries=32)
def _log_mel(key: str, window: int, feature_config: dict[str, Any], _signal: np.ndarray) -> np.ndarray:
    from memgru.tasks.audio import FeatureConfig, clip_windows, compute_features

    return compute_features(clip_windows(_signal)[window], FeatureConfig.from_dict(feature_config))[0]


def log_mel(item: InputFile, signal: np.ndarray, window: int, feature_config: dict[str, Any]) -> np.ndarray:
    """Raw (not normalised) log-mel features [frames, bands] in dB of one 4-s window of an audio input's decoded
    `signal` (`UserInput.waveform`), as the model's reader computes them (`feature_config` from the checkpoint's
    stats); cached per input and window."""
    return _log_mel(item.key, window, feature_config, _signal=signal)
