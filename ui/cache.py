"""Cached models and data: each task model is loaded once per process and never mutated; every hardware
setting gets its own converted copy (`memgru.convert` copies), cached too, so moving a slider back is instant.

Cache keys include the folder and the files' modification stamps, so a retrained (or replaced)
checkpoint or a rebuilt dataset is read afresh without restarting the app.
"""

from __future__ import annotations

from pathlib import Path

import streamlit as st
from torch import nn

from memgru.config import DeviceConfig, ModelConfig, QuantConfig
from memgru.layers import convert, crossbar_layers
from memgru.models import build_model, count_parameters
from ui.sources import load_model, pretrained_root


def file_stamp(*paths: Path) -> tuple[tuple[int, int], ...]:
    """(modification time [ns], size [bytes]) of each file; (0, 0) for a missing one."""
    return tuple((p.stat().st_mtime_ns, p.stat().st_size) if p.is_file() else (0, 0) for p in paths)


def _checkpoint_key(task: str) -> tuple[str, tuple]:
    folder = pretrained_root() / task
    return str(folder.parent), file_stamp(folder / "config.json", folder / "model.safetensors")


@st.cache_resource(show_spinner="Loading the task model…", max_entries=6)
def _task_model(task: str, root: str, stamp: tuple) -> tuple[nn.Module, str]:
    return load_model(task, Path(root))


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
