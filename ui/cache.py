"""Cached models and data: each task model is loaded once per process and never mutated; every hardware
setting gets its own converted copy (`memgru.convert` copies), cached too, so moving a slider back is instant;
the settings one control step away are computed ahead in the background (`prefetch_neighbours`).

Cache keys include the folder and the files' modification stamps, so a retrained (or replaced)
checkpoint or a rebuilt dataset is read afresh without restarting the app.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import streamlit as st
from torch import nn

from memgru.checkpoint import load_checkpoint
from memgru.config import FLOAT_BITS, DeviceConfig, ModelConfig, QuantConfig
from memgru.errors import MemgruError
from memgru.layers import convert, crossbar_layers
from memgru.models import build_model, count_parameters
from memgru.pipeline import CALIBRATION_FILE, deployed_model, prediction
from memgru.tasks.io import UserInput
from memgru.tasks.registry import REPO_ROOT, load_task_model
from ui.controls import DEFAULTS, Settings, neighbour_values, settings_from_values, sidebar
from ui.prefetch import PREFETCHER, enabled
from ui.sources import pretrained_root


def file_stamp(*paths: Path) -> tuple[tuple[int, int], ...]:
    """(modification time [ns], size [bytes]) of each file; (0, 0) for a missing one."""
    return tuple((p.stat().st_mtime_ns, p.stat().st_size) if p.is_file() else (0, 0) for p in paths)


def _checkpoint_key(task: str) -> tuple[str, tuple]:
    folder = pretrained_root() / task
    return str(folder.parent), file_stamp(folder / "config.json", folder / "model.safetensors")


@st.cache_resource(show_spinner="Loading the task model…", max_entries=6)
def _task_model(task: str, root: str, stamp: tuple) -> tuple[nn.Module, str]:
    return load_task_model(task)  # root and stamp only key the cache


@st.cache_resource(show_spinner="Programming the crossbars…", max_entries=3)
def _chip_model(task: str, root: str, stamp: tuple, quant: QuantConfig, device: DeviceConfig, seed: int) -> nn.Module:
    model, _ = _task_model(task, root, stamp)
    return convert(model, quant, device, seed).eval()


def task_model(task: str) -> tuple[nn.Module, str]:
    """The task's model (pretrained checkpoint, else random init) and a sentence saying which.

    Shared by every session: callers must not modify it (convert it instead).
    """
    return _task_model(task, *_checkpoint_key(task))


def chip_model(task: str, quant: QuantConfig, device: DeviceConfig, seed: int) -> nn.Module:
    """The task model mapped onto crossbars at this setting, in eval mode (a copy; the loaded model is untouched).

    Its layers program their matrices on first use and keep them (see `CrossbarGRU.programmed`).
    """
    return _chip_model(task, *_checkpoint_key(task), quant, device, seed)


@st.cache_data(show_spinner=False, max_entries=64)
def _matrix_summary(
    task: str, root: str, stamp: tuple, quant: QuantConfig, device: DeviceConfig, seed: int, layer: str, matrix: str
) -> dict[str, float | int]:
    chip = _chip_model(task, root, stamp, quant, device, seed)
    return crossbar_layers(chip)[layer].programmed()[matrix].summary()


def matrix_summary(
    task: str, quant: QuantConfig, device: DeviceConfig, seed: int, layer: str, matrix: str
) -> dict[str, float | int]:
    """`ProgrammedMatrix.summary()` of one matrix of the chip at this setting (computed once per setting)."""
    return _matrix_summary(task, *_checkpoint_key(task), quant, device, seed, layer, matrix)


@st.cache_data(show_spinner=False)
def parameter_count(cfg: ModelConfig) -> int:
    """Trainable parameters of the architecture `cfg`."""
    return count_parameters(build_model(cfg))


@dataclass(frozen=True)
class TaskCheckpoint:
    """A trained task model as the task pages use it: the deployed checkpoint, or the float-trained one
    in `float/` while the deployed one does not exist yet."""

    task: str
    """Task name."""
    folder: Path
    """Checkpoint folder (config.json, model.safetensors, calibration.npz)."""
    stamp: tuple
    """`file_stamp` of its files: part of every cache key, so a replaced checkpoint is read afresh."""
    note: str
    """Which checkpoint this is, for the page to say."""


def display_path(path: Path) -> str:
    """`path` relative to the repository (e.g. `pretrained/soc`) when it lies inside it, else as given."""
    try:
        return str(path.resolve().relative_to(REPO_ROOT))
    except ValueError:
        return str(path)


def task_checkpoint(task: str) -> TaskCheckpoint | None:
    """The task's trained checkpoint (deployed, else float-trained) or None when neither exists."""
    root = pretrained_root() / task
    shown = display_path(root)
    for folder, note in ((root, f"deployed noise-trained checkpoint {shown}"),
                         (root / "float", f"float-trained checkpoint {shown}/float (the deployed "
                                          "noise-trained one is not there yet)")):
        if (folder / "config.json").is_file():
            stamp = file_stamp(*(folder / n for n in ("config.json", "model.safetensors", CALIBRATION_FILE)))
            return TaskCheckpoint(task, folder, stamp, note)
    return None


@st.cache_resource(show_spinner="Loading the task model…", max_entries=6)
def _checkpoint(task: str, folder: str, stamp: tuple) -> tuple[nn.Module, dict]:
    return load_checkpoint(Path(folder), task=task)


def checkpoint_model(ckpt: TaskCheckpoint) -> tuple[nn.Module, dict]:
    """(model, config) of a checkpoint, loaded once per process; callers must not modify the model."""
    return _checkpoint(ckpt.task, str(ckpt.folder), ckpt.stamp)


@st.cache_resource(show_spinner="Programming and calibrating the crossbars…", max_entries=16)
def _deployed(task: str, folder: str, stamp: tuple, weight_bits: int, act_bits: int, gate_bits: int | None,
              sigma: float, seed: int, device: DeviceConfig | None) -> nn.Module:
    model, _ = _checkpoint(task, folder, stamp)
    return deployed_model(model, Path(folder), weight_bits, act_bits, sigma, seed, device, gate_bits)


def float_model(ckpt: TaskCheckpoint) -> nn.Module:
    """The checkpoint's model in full precision, as trained."""
    return _deployed(ckpt.task, str(ckpt.folder), ckpt.stamp, FLOAT_BITS, FLOAT_BITS, None, 0.0, 0, None)


@st.cache_data(show_spinner=False, max_entries=64)
def _prediction(task: str, folder: str, stamp: tuple, input_key: str, model: str, weight_bits: int, act_bits: int,
                gate_bits: int | None, sigma: float, seed: int, device: DeviceConfig | None, snr_db: float | None,
                _user: UserInput) -> dict[str, Any]:
    if model == "float":
        chip = _deployed(task, folder, stamp, FLOAT_BITS, FLOAT_BITS, None, 0.0, 0, None)
    else:
        chip = _deployed(task, folder, stamp, weight_bits, act_bits, gate_bits, sigma, seed, device)
    return prediction(task, chip, _user, snr_db, seed)


def _crossbar_prediction(ckpt: TaskCheckpoint, input_key: str, user: UserInput, settings: Settings) -> dict:
    q = settings.quant
    return _prediction(ckpt.task, str(ckpt.folder), ckpt.stamp, input_key, "crossbar", q.weight_bits, q.act_bits,
                       q.gate_bits, settings.sigma, settings.seed, settings.device, settings.snr_db, _user=user)


def predictions(ckpt: TaskCheckpoint, input_key: str, user: UserInput, settings: Settings) -> dict[str, dict]:
    """`memgru.pipeline.prediction` of the float and the crossbar model for one input, both with the sidebar's
    input noise, cached per (checkpoint, input, setting): {'float': ..., 'crossbar': ...}.

    `input_key` must identify `user` (e.g. the file's sha256 and name): the arrays themselves are not hashed.
    """
    noise_seed = settings.seed if settings.snr_db is not None else 0  # the float model has no device seed
    return {
        "float": _prediction(ckpt.task, str(ckpt.folder), ckpt.stamp, input_key, "float", FLOAT_BITS, FLOAT_BITS,
                             None, 0.0, noise_seed, None, settings.snr_db, _user=user),
        "crossbar": _crossbar_prediction(ckpt, input_key, user, settings),
    }


def prefetch_neighbours(ckpt: TaskCheckpoint, input_key: str, user: UserInput) -> None:
    """Compute, in the background, the crossbar prediction for this input at each setting one control step
    from the sidebar's (`ui.controls.neighbour_values`, most likely first), so that the next slider step is
    served from the caches; a new call replaces what has not started yet. Off with MEMGRU_PREFETCH=0."""
    if not enabled():
        return
    values = {key: st.session_state.get(key) for key in DEFAULTS}
    jobs = []
    for moved in neighbour_values(values):
        try:
            settings = settings_from_values(moved)
        except MemgruError:
            continue
        jobs.append(functools.partial(_crossbar_prediction, ckpt, input_key, user, settings))
    PREFETCHER.submit(jobs)


def require_checkpoint(task: str, label: str) -> tuple[TaskCheckpoint, dict]:
    """The task's checkpoint and config for a task page, or a clear message and the end of the page run."""
    ckpt = task_checkpoint(task)
    if ckpt is None:
        st.info(f"No trained {label} model yet: `python -m memgru train --task {task}` writes `pretrained/{task}/`.")
        st.stop()
    from memgru.pipeline import input_stats

    try:
        _, config = checkpoint_model(ckpt)
        input_stats(config, ckpt.folder)
    except MemgruError as exc:
        st.error(f"Cannot load the {label} model: {exc}")
        st.stop()
    (st.warning if ckpt.folder.name == "float" else st.caption)(f"Model: {ckpt.note}.")
    return ckpt, config


def task_page(
    task: str, label: str, page_title: str, title: str, caption: str
) -> tuple[Settings, TaskCheckpoint, dict]:
    """The frame every task page starts with: page config, the shared sidebar, title and caption, then the task's
    checkpoint and config (or a clear message and the end of the page run, see `require_checkpoint`)."""
    st.set_page_config(page_title=f"memgru · {page_title}", layout="wide")
    settings = sidebar()
    st.title(title)
    st.caption(caption)
    ckpt, config = require_checkpoint(task, label)
    return settings, ckpt, config
