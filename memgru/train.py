"""Training loop with weight-noise injection and quantization-aware training (QAT).

When `TrainConfig` asks for noise (η > 0) or for QAT bits < 32, the model is first converted to
crossbar layers on the ideal device at the QAT precision; their training forward then applies
fake quantization (STE) and W + N(0, (η·max|W|)^2) per forward pass. Validation runs the eval path; a noise
run also validates on `TrainConfig.val_noise_draws` fixed draws of its weight noise and keeps the epoch that
does best there (`val_metric_noisy` in the history).
With `TrainConfig.tbptt_steps` a per-step regressor (SOC) is trained by truncated back-propagation through
time: each batch of long sequences runs in chunks, the hidden state carried from chunk to chunk.

Example:
    >>> import numpy as np, pandas as pd
    >>> from memgru.config import ModelConfig, TrainConfig
    >>> from memgru.models import build_model
    >>> from memgru.tasks.common import SequenceSet
    >>> rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(64, 6, 2)).astype(np.float32)
    >>> data = SequenceSet(x, (x[:, :, 0].sum(1) > 0).astype(np.int64), pd.DataFrame({"i": range(64)}))
    >>> model = build_model(ModelConfig(n_features=2, n_outputs=2, hidden=8, layers=1, dropout=0.0))
    >>> model, history = train_model(model, data, data, TrainConfig(epochs=2, batch_size=16))
    >>> sorted(history[0])
    ['epoch', 'lr', 'seconds', 'train_loss', 'val_loss', 'val_metric']
"""

from __future__ import annotations

import copy
import json
import math
import time
from collections.abc import Callable
from pathlib import Path
from typing import Literal

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from memgru.config import FLOAT_BITS, DeviceConfig, QuantConfig, TrainConfig
from memgru.errors import MemgruError
from memgru.layers import convert, noisy_weights, set_weight_noise
from memgru.tasks.common import SequenceSet

TaskKind = Literal["classification", "regression"]

REGRESSION_RANGE = (0.0, 1.0)
"""Range of per-step regression targets (fractions: SOC). Outputs are clamped to it before they are scored
(`metric`, `mean_abs_error`) or reported, as a battery management system reports SOC within 0-100 %;
training losses use the raw outputs."""


def task_kind(data: SequenceSet) -> TaskKind:
    """Classification when targets are integer labels [N], regression when float [N, T]."""
    return "classification" if np.issubdtype(data.y.dtype, np.integer) and data.y.ndim == 1 else "regression"


def _loss(kind: TaskKind, out: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    if kind == "classification":
        return F.cross_entropy(out, y)
    return F.mse_loss(out.squeeze(-1), y)


def clamp_regression(out: torch.Tensor) -> torch.Tensor:
    """Regression outputs clamped to `REGRESSION_RANGE` (what is scored and shown; the loss uses raw outputs)."""
    return out.clamp(*REGRESSION_RANGE)


@torch.no_grad()
def predict(model: nn.Module, x: np.ndarray | torch.Tensor, batch_size: int = 256) -> torch.Tensor:
    """Model outputs for inputs [N, T, F] in eval mode, batched (logits, or per-step values)."""
    model.eval()
    x = torch.as_tensor(x, dtype=torch.float32)
    outs = [model(x[i : i + batch_size]) for i in range(0, len(x), batch_size)]
    return torch.cat(outs) if outs else torch.empty(0)


def metric(kind: TaskKind, out: torch.Tensor, y: np.ndarray | torch.Tensor) -> float:
    """Accuracy in % (classification) or RMSE in the target's unit x 100 (regression: SOC in percentage
    points, outputs clamped to `REGRESSION_RANGE` first)."""
    y = torch.as_tensor(y)
    if kind == "classification":
        return float((out.argmax(dim=-1) == y).float().mean() * 100)
    return float(((clamp_regression(out.squeeze(-1)) - y.float()) ** 2).mean().sqrt() * 100)


def mean_abs_error(out: torch.Tensor, y: np.ndarray | torch.Tensor) -> float:
    """Mean absolute error of per-step regression outputs [N, T, 1] or [N, T] against targets [N, T], in the
    targets' unit x 100 (SOC: percentage points), outputs clamped like `metric`'s RMSE."""
    return float((clamp_regression(out.squeeze(-1)) - torch.as_tensor(y).float()).abs().mean() * 100)


def evaluate_model(model: nn.Module, data: SequenceSet, batch_size: int = 256) -> tuple[float, float]:
    """(loss, metric) of `model` on `data` in eval mode; metric as in `metric`."""
    kind = task_kind(data)
    out = predict(model, data.x, batch_size)
    y = torch.as_tensor(data.y)
    return float(_loss(kind, out, y.float() if kind == "regression" else y)), metric(kind, out, y)


VAL_NOISE_SEED = 424243
"""Seed of the first validation weight-noise draw (draw d uses VAL_NOISE_SEED + d, every epoch)."""


def noisy_metric(model: nn.Module, data: SequenceSet, draws: int) -> float:
    """The metric of `model` (crossbar layers with weight noise η set) on `data`, averaged over `draws` fixed
    draws of that weight noise (`memgru.noisy_weights`, seeds VAL_NOISE_SEED + d)."""
    values = []
    for d in range(draws):
        with noisy_weights(model, VAL_NOISE_SEED + d):
            values.append(evaluate_model(model, data)[1])
    return float(np.mean(values))


def finetune_config(base: TrainConfig, epochs: int, weight_bits: int = FLOAT_BITS) -> TrainConfig:
    """The short fine-tune after `base`: `epochs` at a tenth of its learning rate, no weight noise, no
    early stopping, QAT of the weights at `weight_bits` (32 = the model's own precision), float activations."""
    return TrainConfig.from_dict({**base.to_dict(), "epochs": epochs, "lr": base.lr / 10, "weight_noise": 0.0,
                                  "qat_weight_bits": weight_bits, "qat_act_bits": FLOAT_BITS, "patience": 0})


def prepare_for_training(model: nn.Module, cfg: TrainConfig) -> nn.Module:
    """Convert to crossbar layers (ideal device, QAT precision) when the config asks for noise or QAT."""
    if cfg.weight_noise <= 0 and cfg.qat_weight_bits >= FLOAT_BITS and cfg.qat_act_bits >= FLOAT_BITS:
        return model
    quant = QuantConfig(weight_bits=cfg.qat_weight_bits, act_bits=cfg.qat_act_bits)
    return set_weight_noise(convert(model, quant, DeviceConfig.ideal(), seed=cfg.seed), cfg.weight_noise,
                            cfg.noise_scale)


def _tbptt_chunk(model: nn.Module, train: SequenceSet, cfg: TrainConfig) -> int:
    """Steps per optimizer step along time: `cfg.tbptt_steps` for per-step regression on sequences
    longer than that, else the whole sequence length."""
    length = train.x.shape[1]
    if cfg.tbptt_steps <= 0 or cfg.tbptt_steps >= length:
        return max(length, 1)
    if task_kind(train) != "regression" or not hasattr(model, "forward_state"):
        raise MemgruError("tbptt_steps needs a per-step regression model with forward_state (gru_regressor)")
    return cfg.tbptt_steps


def train_model(
    model: nn.Module,
    train: SequenceSet,
    val: SequenceSet,
    cfg: TrainConfig,
    log_path: str | Path | None = None,
    progress: Callable[[dict], None] | None = None,
) -> tuple[nn.Module, list[dict]]:
    """Train `model` on `train`, select the epoch with the best validation metric, return (model, history).

    The history (one dict per epoch: train/val loss, val metric — accuracy % or RMSE % — learning rate,
    seconds) is also written as JSON lines to `log_path` when given. A noise run (η > 0 and
    `cfg.val_noise_draws` > 0) also records `val_metric_noisy` (see `noisy_metric`) and selects on it.
    """
    torch.manual_seed(cfg.seed)
    kind = task_kind(train)
    model = prepare_for_training(model, cfg)
    opt = torch.optim.AdamW(model.parameters(), lr=cfg.lr, weight_decay=cfg.weight_decay)
    chunk = _tbptt_chunk(model, train, cfg)
    steps_per_epoch = max(1, math.ceil(len(train) / cfg.batch_size)) * math.ceil(train.x.shape[1] / chunk)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, max_lr=cfg.lr, total_steps=cfg.epochs * steps_per_epoch)
    gen = torch.Generator().manual_seed(cfg.seed)
    x_all = torch.as_tensor(train.x, dtype=torch.float32)
    y_all = torch.as_tensor(train.y)
    y_all = y_all.float() if kind == "regression" else y_all.long()
    better = (lambda a, b: a > b) if kind == "classification" else (lambda a, b: a < b)
    noisy_selection = cfg.weight_noise > 0 and cfg.val_noise_draws > 0
    best_metric, best_state, stale, history = None, None, 0, []
    log = open(log_path, "w") if log_path else None  # noqa: SIM115 (kept open across epochs)
    try:
        for epoch in range(1, cfg.epochs + 1):
            start = time.perf_counter()
            model.train()
            order = torch.randperm(len(train), generator=gen)
            total, count = 0.0, 0
            for i in range(0, len(order), cfg.batch_size):
                idx = order[i : i + cfg.batch_size]
                x_b, y_b, h = x_all[idx], y_all[idx], None
                for t in range(0, x_b.shape[1], chunk):
                    if chunk < x_b.shape[1]:
                        out, h = model.forward_state(x_b[:, t : t + chunk], h)
                        h = h.detach()
                        loss = _loss(kind, out, y_b[:, t : t + chunk])
                    else:
                        loss = _loss(kind, model(x_b), y_b)
                    opt.zero_grad(set_to_none=True)
                    loss.backward()
                    nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
                    opt.step()
                    sched.step()
                    weight = len(idx) * min(chunk, x_b.shape[1] - t) / x_b.shape[1]
                    total, count = total + float(loss.detach()) * weight, count + weight
            val_loss, val_metric = evaluate_model(model, val)
            row = {
                "epoch": epoch, "train_loss": total / max(count, 1), "val_loss": val_loss,
                "val_metric": val_metric, "lr": sched.get_last_lr()[0],
            }
            if noisy_selection:
                row["val_metric_noisy"] = noisy_metric(model, val, cfg.val_noise_draws)
            row["seconds"] = time.perf_counter() - start
            selected = row.get("val_metric_noisy", val_metric)
            history.append(row)
            if log:
                log.write(json.dumps(row) + "\n")
                log.flush()
            if progress:
                progress(row)
            if best_metric is None or better(selected, best_metric):
                best_metric, best_state, stale = selected, copy.deepcopy(model.state_dict()), 0
            else:
                stale += 1
                if cfg.patience and stale >= cfg.patience:
                    break
    finally:
        if log:
            log.close()
    if best_state is not None:
        model.load_state_dict(best_state)
    return model.eval(), history
