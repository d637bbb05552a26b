"""Checkpoints: a folder with `model.safetensors` (weights, never pickled) and `config.json`
(task, model config, crossbar mapping if any, task extras such as normalisation stats, and the
weights' sha256). A file alone rebuilds its model; a tampered or mismatched file is refused.

Example:
    >>> import tempfile, torch
    >>> from memgru.config import ModelConfig
    >>> from memgru.models import build_model
    >>> cfg = ModelConfig(kind="gru_classifier", n_features=4, n_outputs=2, hidden=8, layers=1)
    >>> d = tempfile.mkdtemp()
    >>> _ = save_checkpoint(d, build_model(cfg), cfg, task="trajectory")
    >>> model, info = load_checkpoint(d, task="trajectory")
    >>> info["model"]["hidden"]
    8
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from safetensors import SafetensorError
from safetensors.torch import load_file, save_file
from torch import nn

from memgru.config import DeviceConfig, ModelConfig, QuantConfig
from memgru.errors import MemgruError
from memgru.layers import convert, crossbar_layers
from memgru.models import build_model

FORMAT = "memgru-checkpoint/1"
"""Version tag written into every config.json."""
WEIGHTS, CONFIG = "model.safetensors", "config.json"
"""File names inside a checkpoint folder."""


def sha256_file(path: str | Path) -> str:
    """Hex sha256 of a file's bytes."""
    digest = hashlib.sha256()
    with open(path, "rb") as fh:
        for chunk in iter(lambda: fh.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def save_checkpoint(
    directory: str | Path, model: nn.Module, model_cfg: ModelConfig, task: str, extra: dict[str, Any] | None = None
) -> Path:
    """Write `model` (plain or converted) to `directory`; returns the config.json path.

    `extra` holds JSON-able task data (labels, feature config, normalisation stats, metrics).
    """
    directory = Path(directory)
    try:
        directory.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise MemgruError(f"cannot create checkpoint folder {directory}: {exc.strerror}") from exc
    state = {k: v.detach().contiguous().clone() for k, v in model.state_dict().items()}
    save_file(state, str(directory / WEIGHTS))
    layers = crossbar_layers(model)
    mapping = None
    if layers:
        first = next(iter(layers.values()))
        mapping = {"quant": first.quant.to_dict(), "device": first.device.to_dict(), "seed": first.base_seed}
    config = {
        "format": FORMAT,
        "task": task,
        "model": model_cfg.to_dict(),
        "crossbar": mapping,
        "extra": extra or {},
        "sha256": sha256_file(directory / WEIGHTS),
    }
    path = directory / CONFIG
    path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    return path


def read_config(directory: str | Path) -> dict[str, Any]:
    """The checkpoint's config.json, validated (format and fields), without loading weights."""
    directory = Path(directory)
    path = directory / CONFIG
    if not directory.is_dir():
        raise MemgruError(f"checkpoint folder not found: {directory}")
    if not path.is_file():
        raise MemgruError(f"checkpoint {directory} has no {CONFIG}")
    try:
        config = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise MemgruError(f"checkpoint {path} is not valid JSON: {exc}") from exc
    if not isinstance(config, dict) or config.get("format") != FORMAT:
        raise MemgruError(f"{path} is not a memgru checkpoint config (expected format {FORMAT!r})")
    for key in ("task", "model", "sha256"):
        if key not in config:
            raise MemgruError(f"checkpoint config {path} lacks {key!r}")
    return config


def update_extra(directory: str | Path, values: dict[str, Any]) -> Path:
    """Merge JSON-able `values` into the `extra` of the checkpoint in `directory` (e.g. the activation
    calibration `calibrate` chose on validation); the weights and their sha256 are untouched. Returns
    the config.json path."""
    config = read_config(directory)
    extra = config.get("extra") if isinstance(config.get("extra"), dict) else {}
    config["extra"] = {**extra, **values}
    path = Path(directory) / CONFIG
    try:
        path.write_text(json.dumps(config, indent=2, sort_keys=True) + "\n")
    except OSError as exc:
        raise MemgruError(f"cannot write {path}: {exc.strerror}") from exc
    return path


def load_checkpoint(directory: str | Path, task: str | None = None) -> tuple[nn.Module, dict[str, Any]]:
    """Rebuild the model saved in `directory` (eval mode) and return it with its config dict.

    Checks the sha256 of the weights before parsing them and, when `task` is given, that the
    checkpoint belongs to that task. Weights are read with safetensors: nothing is unpickled.
    """
    directory = Path(directory)
    config = read_config(directory)
    if task is not None and config["task"] != task:
        raise MemgruError(f"checkpoint {directory} is for task {config['task']!r}, not {task!r}")
    weights = directory / WEIGHTS
    if not weights.is_file():
        raise MemgruError(f"checkpoint {directory} has no {WEIGHTS}")
    if sha256_file(weights) != config["sha256"]:
        raise MemgruError(f"checkpoint {weights} does not match the sha256 in its config (tampered or corrupt)")
    try:
        state = load_file(str(weights))
    except (SafetensorError, OSError, ValueError) as exc:
        raise MemgruError(f"{weights} is not a valid safetensors file ({exc})") from exc
    model_cfg = ModelConfig.from_dict(config["model"])
    model = build_model(model_cfg)
    mapping = config.get("crossbar")
    if mapping:
        model = convert(
            model, QuantConfig.from_dict(mapping["quant"]), DeviceConfig.from_dict(mapping["device"]),
            seed=int(mapping["seed"]),
        )
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise MemgruError(f"weights in {weights} do not fit the model in its config: {first}") from exc
    return model.eval(), config
