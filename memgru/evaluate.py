"""Sweeps: the task metric vs weight bits, programming variation σ and input SNR, as DataFrames.

Each row is one (weight bits, activation bits, σ, SNR, device seed) setting evaluated on one split:
the model is mapped onto crossbars with that setting (`convert`), its activation and ADC ranges
are calibrated on calibration inputs (never on the evaluated split), and the metric is measured.

Example:
    >>> import numpy as np, pandas as pd, torch
    >>> from memgru.config import ModelConfig
    >>> from memgru.models import build_model
    >>> from memgru.tasks.common import SequenceSet
    >>> _ = torch.manual_seed(0); rng = np.random.default_rng(0)
    >>> x = rng.normal(size=(8, 5, 3)).astype(np.float32)
    >>> data = SequenceSet(x, np.arange(8) % 2, pd.DataFrame({"i": range(8)}))
    >>> model = build_model(ModelConfig(n_features=3, n_outputs=2, hidden=8, layers=1))
    >>> rows = sweep(model, data, calibration=data.x, bits=[4, 32], sigmas=[0.0], seeds=[0])
    >>> list(rows.columns[:5]), len(rows)
    (['weight_bits', 'act_bits', 'sigma', 'snr_db', 'seed'], 2)
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterable, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn

from memgru.config import FLOAT_BITS, DeviceConfig, QuantConfig
from memgru.layers import calibrate, convert
from memgru.tasks.common import SequenceSet
from memgru.train import mean_abs_error, metric, predict, task_kind

Perturb = Callable[[SequenceSet, float, int], SequenceSet]
"""Task hook: (split, SNR in dB, seed) -> the split with input noise at that SNR."""


def chip_model(
    model: nn.Module, weight_bits: int, act_bits: int, sigma: float, seed: int,
    calibration: np.ndarray | torch.Tensor, device: DeviceConfig | None = None, act_percentile: float = 100.0,
    gate_bits: int | None = None,
) -> nn.Module:
    """`model` programmed onto crossbars at this setting and calibrated, in eval mode.

    `device` defaults to `DeviceConfig.ideal()`, so that only quantization and the programming
    variation `sigma` (std as a fraction of g_max - g_min) act; pass `DeviceConfig.rram_1t1r()` for
    the whole set of non-idealities. `act_percentile` < 100 calibrates activation ranges on
    percentiles instead of min/max (see `QuantConfig.act_percentile`); `gate_bits` sets the gate outputs'
    precision apart (see `QuantConfig.gate_bits`).
    """
    base = device or DeviceConfig.ideal()
    quant = QuantConfig(weight_bits=weight_bits, act_bits=act_bits, act_percentile=act_percentile, gate_bits=gate_bits)
    return calibrated(convert(model, quant, base.replace(prog_sigma=sigma), seed), calibration)


def calibrated(chip: nn.Module, calibration: np.ndarray | torch.Tensor) -> nn.Module:
    """`chip` (a converted model) calibrated on the sequences `calibration` [N, T, F] in batches of 256,
    in eval mode."""
    calib = torch.as_tensor(calibration, dtype=torch.float32)
    return calibrate(chip, [calib[i : i + 256] for i in range(0, len(calib), 256)]).eval()


def sweep(
    model: nn.Module,
    data: SequenceSet,
    calibration: np.ndarray | torch.Tensor,
    bits: Sequence[int] = (2, 3, 4, 5, 6, 7, 8, 16, FLOAT_BITS),
    sigmas: Sequence[float] = (0.0,),
    snrs: Sequence[float | None] = (None,),
    seeds: Iterable[int] = (0,),
    act_bits: int = 8,
    device: DeviceConfig | None = None,
    perturb: Perturb | None = None,
    progress: Callable[[float], None] | None = None,
    act_percentile: float = 100.0,
    gate_bits: int | None = None,
) -> pd.DataFrame:
    """The metric for every combination of weight bits, σ, SNR and device seed.

    Activations use `act_bits` except for float weights, which are evaluated with float activations
    too (the float reference). `perturb` adds input noise for finite SNRs (required when `snrs` has
    any). Returns one row per setting: weight_bits, act_bits, sigma, snr_db, seed, the metric column
    (`accuracy` in % or `rmse` in %; regression also `mae`, same unit), n (sequences) and seconds; with
    `gate_bits` also a gate_bits column (the gate outputs' precision of the quantized rows; the float
    reference stays float).
    """
    kind = task_kind(data)
    name = "accuracy" if kind == "classification" else "rmse"
    seeds = list(seeds)
    grid = [(b, s, snr, seed) for b in bits for s in sigmas for snr in snrs for seed in seeds]
    noisy: dict[tuple[float, int], SequenceSet] = {}
    rows = []
    for i, (b, sigma, snr, seed) in enumerate(grid):
        start = time.perf_counter()
        a = FLOAT_BITS if b >= FLOAT_BITS else act_bits
        split = data
        if snr is not None:
            if perturb is None:
                raise ValueError("sweeping input SNR needs the task's perturb function")
            if (snr, seed) not in noisy:  # one perturbed copy per (SNR, seed), shared by every precision
                noisy[(snr, seed)] = perturb(data, float(snr), seed)
            split = noisy[(snr, seed)]
        g = None if gate_bits is None or a >= FLOAT_BITS else gate_bits
        chip = chip_model(model, b, a, sigma, seed, calibration, device, act_percentile, g)
        out = predict(chip, split.x)
        rows.append({
            "weight_bits": b, "act_bits": a, **({} if gate_bits is None else {"gate_bits": g or FLOAT_BITS}),
            **({} if act_percentile >= 100 or a >= FLOAT_BITS else {"act_percentile": act_percentile}),
            "sigma": sigma, "snr_db": snr, "seed": seed,
            name: metric(kind, out, split.y), **({"mae": mean_abs_error(out, split.y)} if kind == "regression" else {}),
            "n": len(split), "seconds": time.perf_counter() - start,
        })
        if progress:
            progress((i + 1) / len(grid))
    return pd.DataFrame(rows)


def summarise(rows: pd.DataFrame, by: Sequence[str] = ()) -> pd.DataFrame:
    """Mean and std of the metric over device seeds for each (`by`..., bits, act bits, σ, SNR) setting."""
    value = "accuracy" if "accuracy" in rows else "rmse"
    keys = [*by, "weight_bits", "act_bits", "sigma", "snr_db"]
    grouped = rows.fillna({"snr_db": np.inf}).groupby(keys, sort=False)[value]
    out = grouped.agg(["mean", "std", "count"]).reset_index()
    out["snr_db"] = out["snr_db"].replace(np.inf, np.nan)
    return out.rename(columns={"mean": f"{value}_mean", "std": f"{value}_std", "count": "seeds"})
