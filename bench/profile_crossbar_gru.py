"""Where the crossbar GRU's time goes, on one thread.

`python bench/profile_crossbar_gru.py > results/bench_profile_1thread.txt`

The paper-sized GRU (2 x 384, batch 32 x 173 steps x 64 features) at W6/A8, rram_1t1r with sigma 0.05,
8-bit ADC, no read noise: the torch profiler's operator table for one forward pass, then the recurrent
MVM with per-tile ADC against a plain matmul, and the float / crossbar forward times.
"""

import time

import torch
from torch.profiler import profile

from memgru import DeviceConfig, QuantConfig, convert


def per_call_us(fn, n: int = 200) -> float:
    """Mean microseconds per call after a warm-up."""
    for _ in range(10):
        fn()
    start = time.perf_counter()
    for _ in range(n):
        fn()
    return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    torch.set_num_threads(1)
    torch.manual_seed(0)
    gru = torch.nn.GRU(64, 384, num_layers=2, batch_first=True).eval()
    x = torch.randn(32, 173, 64)
    device = DeviceConfig.rram_1t1r(prog_sigma=0.05, adc_bits=8, read_sigma=0.0)
    chip = convert(gru, QuantConfig(weight_bits=6, act_bits=8), device, seed=0).eval()
    with torch.no_grad():
        chip(x)
        with profile() as prof:
            chip(x)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
        hh, h = chip.programmed()["hh_l0"], torch.randn(32, 384)
        print(f"per-step recurrent MVM with per-tile ADC: {per_call_us(lambda: hh.mvm(h)):.0f} us; "
              f"plain h @ W: {per_call_us(lambda: h @ hh.w_flat):.0f} us")
        for name, model in (("float nn.GRU", gru), ("crossbar (W6/A8, ADC8, no read noise)", chip)):
            start = time.perf_counter()
            model(x)
            print(f"{name} forward: {(time.perf_counter() - start) * 1000:.0f} ms")


if __name__ == "__main__":
    main()
