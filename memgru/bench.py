"""`python -m memgru bench`: the crossbar GRU's cost against PyTorch's fused float GRU.

All variants run on the same input, interleaved repetition by repetition so that machine load hits
them alike; the median wall time of one forward pass is reported.
"""

from __future__ import annotations

import statistics
import time
from typing import Any

import torch

from memgru.config import DeviceConfig, QuantConfig
from memgru.layers import convert

PAPER_SHAPE = {"batch": 32, "steps": 173, "features": 64, "hidden": 384, "layers": 2}
"""The paper-sized GRU (~1.4 M parameters) on a 4-s log-mel clip (173 frames x 64 bands)."""
QUICK_SHAPE = {"batch": 4, "steps": 20, "features": 8, "hidden": 32, "layers": 2}
"""A small shape for smoke tests."""


def bench_variants() -> dict[str, tuple[QuantConfig, DeviceConfig]]:
    """The crossbar settings timed against the float GRU."""
    rram = DeviceConfig.rram_1t1r(prog_sigma=0.05, adc_bits=8)
    w6a8 = QuantConfig(weight_bits=6, act_bits=8)
    return {
        "crossbar W6/A8 rram_1t1r sigma=0.05 ADC8": (w6a8, rram),
        "  same without read noise": (w6a8, rram.replace(read_sigma=0.0)),
        "  same without ADC": (w6a8, rram.replace(adc_bits=32)),
        "crossbar float weights, ideal device": (QuantConfig(), DeviceConfig.ideal()),
    }


@torch.no_grad()
def run_bench(repeats: int = 5, quick: bool = False, seed: int = 0) -> dict[str, Any]:
    """Median ms per forward pass of each variant and its ratio to `torch.nn.GRU`."""
    shape = QUICK_SHAPE if quick else PAPER_SHAPE
    torch.manual_seed(seed)
    gru = torch.nn.GRU(shape["features"], shape["hidden"], shape["layers"], batch_first=True).eval()
    x = torch.randn(shape["batch"], shape["steps"], shape["features"])
    models = {"float torch.nn.GRU": gru}
    for name, (quant, device) in bench_variants().items():
        models[name] = convert(gru, quant, device, seed=seed).eval()
    for model in models.values():
        model(x)  # programs the chip and calibrates activation/ADC ranges; not timed
    times: dict[str, list[float]] = {name: [] for name in models}
    for _ in range(max(1, repeats)):
        for name, model in models.items():
            start = time.perf_counter()
            model(x)
            times[name].append((time.perf_counter() - start) * 1000)
    base = statistics.median(times["float torch.nn.GRU"])
    runs = [
        {"name": name, "ms": statistics.median(t), "ratio": statistics.median(t) / base} for name, t in times.items()
    ]
    return {
        "input": f"batch {shape['batch']} x {shape['steps']} steps x {shape['features']} features",
        "model": f"{shape['layers']} layers x {shape['hidden']} hidden",
        "parameters": sum(p.numel() for p in gru.parameters()),
        "threads": torch.get_num_threads(),
        "repeats": repeats,
        "float_ms": base,
        "crossbar_ms": runs[1]["ms"],
        "ratio": runs[1]["ratio"],
        "runs": runs,
    }
