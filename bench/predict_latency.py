"""`predict` latency on a 4-s clip once the model is loaded (issue goal: well under 100 ms).

Run from the repository root: `python bench/predict_latency.py [--threads N]`. Loads the bundled audio
checkpoint once, then times, for the bundled 4-s clip: reading + decoding + log-mel features, and the
model on them, float and programmed at W6/A8 (ideal device; programming and calibration happen once,
outside the timing, as in a running service). Prints the median of 20 runs of each.
"""

import argparse
import statistics
import time
from pathlib import Path

import torch

from memgru.checkpoint import load_checkpoint
from memgru.pipeline import deployed_model, prediction
from memgru.tasks.io import task_io
from memgru.tasks.registry import task_spec

CLIP = Path(__file__).resolve().parents[1] / "assets" / "audio" / "dog_bark__synthetic_heldout__synth-dog_bark-34.ogg"


def median_ms(action, repeats: int = 20) -> float:
    """Median wall time of `action()` in milliseconds (after one warm-up call)."""
    action()
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        action()
        times.append(time.perf_counter() - start)
    return statistics.median(times) * 1000


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    io = task_io("audio")
    folder = task_spec("audio").pretrained_dir
    model, config = load_checkpoint(folder, task="audio")
    stats = config["extra"]["stats"]
    chips = {"float": model.eval(), "W6/A8": deployed_model(model, folder, 6, 8, 0.0, 0)}
    read_ms = median_ms(lambda: io.read_input(CLIP, stats))
    user = io.read_input(CLIP, stats)
    print(f"threads {args.threads}; read + decode + features: {read_ms:.1f} ms (median of 20)")
    for name, chip in chips.items():
        model_ms = median_ms(lambda chip=chip: prediction("audio", chip, user))
        total_ms = median_ms(lambda chip=chip: prediction("audio", chip, io.read_input(CLIP, stats)))
        print(f"{name}: model {model_ms:.1f} ms, file to label {total_ms:.1f} ms")


if __name__ == "__main__":
    main()
