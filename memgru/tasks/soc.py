"""Battery state-of-charge (SOC) task: simulated drive-cycle data, features, windows and metrics.

Protocol (mirrors the paper's CALCE protocol on simulated data):
- Cell: LG M50 21700, 5 Ah, simulated with PyBaMM SPMe + lumped thermal, ``ORegan2022`` parameters
  (see `memgru.tasks.soc_sim`). Every recording starts at full charge (4.2 V, ambient temperature)
  and repeats one drive cycle, scaled to a given peak discharge current, until the voltage hits 2.5 V.
- Test: FUDS (the UDDS schedule) at ambient 0, 25 and 45 °C, scaled to a 2C (10 A) peak. FUDS is
  never used for training.
- Train / validation: US06, DST and WLTC at 0, 10, 20, 25, 30, 40, 45, 50 °C, each at two scalings,
  a 2C (10 A) and a 1C (5 A) peak, so the mean discharge current of the training recordings spans
  0.5–1.4 A (one scaling alone: 1.0–1.4 A) — a car is driven gently as well as hard; the validation
  recordings are DST at 10 °C, US06 at 30 °C and WLTC at 40 °C at both scalings (whole recordings,
  never windows of a training recording).
- Measurements: voltage, current and cell temperature at 1 Hz with seeded Gaussian sensor noise
  (σ_V = 3 mV, σ_I = sqrt((10 mA)² + (0.5 % · |I|)²), σ_T = 0.3 °C). The SOC target is coulomb
  counting of the *true* current against the 5 Ah nominal capacity, starting from 1.
- Model inputs: (voltage, current, temperature) standardised with mean/std of the training split.
  The model tracks a whole recording (it runs over the trace from its first sample, as a BMS does),
  so it is trained on long windows: 6,000 s with a 1,000 s stride (plus one window flush with each
  recording's end, so the empty cell is always covered, and starts every 250 s in the first 1,000 s,
  `HEAD_STRIDE_S`, so that the high-SOC start of a recording is not under-represented), run in
  chunks with the hidden state carried over (truncated back-propagation through time,
  `TrainConfig.tbptt_steps`: 500 steps by default; the bundled model's last stages used 2,000, which
  cut the error in the first 2,000 s after full charge by a third). Windows that start mid-recording
  teach the model to find its bearings from the voltage when it is switched on at an unknown SOC;
  the windows at a recording's start teach it to follow the charge from full. Validation and test
  windows are 12,000 s long (one from the start, one flush with the end of each recording). Whole-trace
  evaluation runs the model over a full recording (`load_trace` + `featurise`).

`python -m memgru data soc` calls `build_dataset`; `predict --task soc FILE` calls `read_user_input`.
"""

from __future__ import annotations

import json
import time
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from memgru.errors import MemgruError
from memgru.tasks.common import SequenceSet, write_json
from memgru.tasks.soc_csv import SocRecord, read_soc_csv, write_soc_csv
from memgru.tasks.soc_sim import (
    CAPACITY_AH,
    DRIVE_CYCLE_DIR,
    LOWER_CUTOFF_V,
    MODEL_NAME,
    PARAMETER_SET,
    SimSpec,
    simulate_cached,
)

FEATURES = ("voltage_v", "current_a", "temperature_c")
"""Model input features, in this order (physical units before standardisation: V, A, °C)."""
WINDOW_S = 6000
"""Training window length (samples at 1 Hz = seconds)."""
STRIDE_S = 1000
"""Step between the starts of consecutive training windows (s)."""
HEAD_STRIDE_S = 250
"""Step between extra training window starts within a recording's first `STRIDE_S` (s). With starts every
`STRIDE_S` alone, a recording's first 1,000 s (full charge down to ~95 % SOC, where a BMS most often starts)
lie in one window out of the six that cover any later second, and only 6 % of the windows start from a
full charge; the FUDS test model underestimated SOC there by 1.5-2.5 points."""
EVAL_WINDOW_S = 12000
"""Validation and test window length (s); their stride is the same, plus one window flush with the end."""
TEST_CYCLE = "FUDS"
"""Held-out drive cycle; simulated from the UDDS schedule, which FUDS is."""
TEST_TEMPERATURES_C = (0.0, 25.0, 45.0)
"""Ambient temperatures of the FUDS test recordings (°C)."""
TRAIN_CYCLES = ("US06", "DST", "WLTC")
"""Drive cycles of the training and validation recordings."""
TRAIN_TEMPERATURES_C = (0.0, 10.0, 20.0, 25.0, 30.0, 40.0, 45.0, 50.0)
"""Ambient temperatures of the training and validation recordings (°C)."""
VAL_RECORDINGS = frozenset({("DST", 10.0), ("US06", 30.0), ("WLTC", 40.0)})
"""(cycle, ambient °C) pairs held out from training for validation."""
PEAK_C_RATE = 2.0
"""Peak discharge current of the scaled test drive cycle, in multiples of the 5 Ah capacity (2.0 = 10 A)."""
TRAIN_PEAK_C_RATES = (2.0, 1.0)
"""Peak discharge currents (multiples of the capacity) at which every training and validation cycle is run."""
NOISE_SIGMA = {"voltage_v": 0.003, "current_a_abs": 0.010, "current_a_rel": 0.005, "temperature_c": 0.3}
"""Sensor noise standard deviations: volts, amperes, fraction of |I|, °C."""

_SIM_NAMES = {TEST_CYCLE: "UDDS"}
_META_COLUMNS = ("recording", "cycle", "ambient_c", "peak_c_rate", "start_s")


def recording_name(cycle: str, ambient_c: float, peak_c_rate: float = PEAK_C_RATE) -> str:
    """Identifier of one recording (also its trace file's stem): ``FUDS_25C`` at the PEAK_C_RATE scaling,
    ``US06_25C_1Cpeak`` at another peak current."""
    name = f"{cycle}_{ambient_c:g}C"
    return name if float(peak_c_rate) == PEAK_C_RATE else f"{name}_{peak_c_rate:g}Cpeak"


def coulomb_count(
    current_a: np.ndarray, dt_s: float = 1.0, *, capacity_ah: float = CAPACITY_AH, soc0: float = 1.0
) -> np.ndarray:
    """SOC (fraction) after each sample by trapezoidal integration of the current (A, + = discharge).

    Returns float64 [L] with ``soc[0] = soc0``; exact for a current that is linear between samples.
    """
    current_a = np.asarray(current_a, np.float64)
    if capacity_ah <= 0 or dt_s <= 0:
        raise MemgruError(f"capacity ({capacity_ah} A h) and time step ({dt_s} s) must be positive")
    charge_as = np.concatenate([[0.0], np.cumsum(0.5 * (current_a[1:] + current_a[:-1]) * dt_s)])
    return soc0 - charge_as / (3600.0 * capacity_ah)


def add_sensor_noise(record: pd.DataFrame, rng: np.random.Generator) -> pd.DataFrame:
    """Noisy copy of a clean record (time_s, current_a, voltage_v, temperature_c) with NOISE_SIGMA."""
    n = len(record)
    current = record["current_a"].to_numpy()
    sigma_i = np.hypot(NOISE_SIGMA["current_a_abs"], NOISE_SIGMA["current_a_rel"] * np.abs(current))
    return record.assign(
        current_a=current + sigma_i * rng.standard_normal(n),
        voltage_v=record["voltage_v"].to_numpy() + NOISE_SIGMA["voltage_v"] * rng.standard_normal(n),
        temperature_c=record["temperature_c"].to_numpy() + NOISE_SIGMA["temperature_c"] * rng.standard_normal(n),
    )


def featurise(frame: pd.DataFrame, stats: dict) -> np.ndarray:
    """Standardised model inputs float32 [L, 3] (FEATURES order) from a 1 Hz trace in physical units.

    `stats` is the JSON written by `build_dataset` (``stats.json``): {"features", "mean", "std"}.
    """
    if list(stats.get("features", [])) != list(FEATURES):
        raise MemgruError(f"normalisation stats are for features {stats.get('features')}, expected {list(FEATURES)}")
    raw = frame[list(FEATURES)].to_numpy(np.float64)
    return ((raw - np.asarray(stats["mean"])) / np.asarray(stats["std"])).astype(np.float32)


def window_starts(length: int, window: int = WINDOW_S, stride: int = STRIDE_S,
                  head_stride: int | None = None) -> np.ndarray:
    """Start indices of the windows over a trace of `length` samples: every `stride`, plus one flush
    with the end, plus (with `head_stride`) every `head_stride` within the first `stride`. Sorted, no
    repeats; empty when the trace is shorter than one window."""
    if window <= 0 or stride <= 0 or (head_stride is not None and head_stride <= 0):
        raise MemgruError(f"window ({window}), stride ({stride}) and head stride ({head_stride}) must be positive")
    if length < window:
        return np.zeros(0, np.int64)
    starts = np.arange(0, length - window + 1, stride)
    if starts[-1] != length - window:
        starts = np.append(starts, length - window)
    if head_stride is not None:
        head = np.arange(0, min(stride, length - window + 1), head_stride)
        starts = np.union1d(starts, head)
    return starts.astype(np.int64)


def make_windows(
    features: np.ndarray, soc: np.ndarray, window: int = WINDOW_S, stride: int = STRIDE_S,
    head_stride: int | None = None,
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Cut a trace into windows (`window_starts`): inputs float32 [W, window, F], SOC float32 [W, window],
    starts int [W]."""
    starts = window_starts(len(features), window, stride, head_stride)
    index = starts[:, None] + np.arange(window)[None, :]
    return features[index].astype(np.float32), np.asarray(soc, np.float32)[index], starts


def soc_errors(predicted: np.ndarray, truth: np.ndarray) -> dict[str, float]:
    """RMSE, MAE and maximum absolute error in SOC percentage points of two SOC traces given as fractions."""
    predicted, truth = np.asarray(predicted, np.float64), np.asarray(truth, np.float64)
    if predicted.shape != truth.shape:
        raise MemgruError(f"predicted SOC has shape {predicted.shape} but the truth has {truth.shape}")
    err = 100.0 * (predicted - truth)
    return {
        "rmse_pct": float(np.sqrt(np.mean(err**2))),
        "mae_pct": float(np.mean(np.abs(err))),
        "max_abs_pct": float(np.max(np.abs(err))),
    }


def _plan(
    train_cycles: tuple[str, ...],
    train_temperatures_c: tuple[float, ...],
    test_temperatures_c: tuple[float, ...],
    peak_c_rate: float,
    train_peak_c_rates: tuple[float, ...],
) -> list[tuple[str, str, float, float]]:
    """(split, cycle, ambient °C, peak C-rate) of every recording of the data set."""
    if TEST_CYCLE in train_cycles or _SIM_NAMES[TEST_CYCLE] in train_cycles:
        raise MemgruError(f"the test drive cycle {TEST_CYCLE} (UDDS) must not be a training cycle")
    if not train_temperatures_c or not any(
        (c, float(t)) not in VAL_RECORDINGS for c in train_cycles for t in train_temperatures_c
    ):
        raise MemgruError("the SOC data set needs at least one training recording")
    if not train_peak_c_rates or min(train_peak_c_rates) <= 0 or peak_c_rate <= 0:
        raise MemgruError(f"peak C-rates must be positive, got test {peak_c_rate} and train {train_peak_c_rates}")
    plan = [("test", TEST_CYCLE, float(t), float(peak_c_rate)) for t in test_temperatures_c]
    for rate in train_peak_c_rates:
        for cycle in train_cycles:
            for temp in train_temperatures_c:
                split = "val" if (cycle, float(temp)) in VAL_RECORDINGS else "train"
                plan.append((split, cycle, float(temp), float(rate)))
    return plan


def build_dataset(
    out_dir: Path,
    *,
    seed: int = 0,
    peak_c_rate: float = PEAK_C_RATE,
    train_peak_c_rates: tuple[float, ...] = TRAIN_PEAK_C_RATES,
    train_cycles: tuple[str, ...] = TRAIN_CYCLES,
    train_temperatures_c: tuple[float, ...] = TRAIN_TEMPERATURES_C,
    test_temperatures_c: tuple[float, ...] = TEST_TEMPERATURES_C,
    window_s: int = WINDOW_S,
    stride_s: int = STRIDE_S,
    head_stride_s: int | None = HEAD_STRIDE_S,
    eval_window_s: int | None = EVAL_WINDOW_S,
    max_duration_s: int | None = None,
    cycle_dir: Path = DRIVE_CYCLE_DIR,
) -> dict:
    """Simulate (or reuse cached) recordings, add seeded sensor noise and write the SOC data set.

    Writes under `out_dir`: ``sim/*.npz`` (clean simulations, the cache), ``traces/<recording>.csv``
    (noisy 1 Hz traces in the user CSV format with the true SOC), ``train|val|test.npz/.csv``
    (`SequenceSet` windows), ``stats.json`` (train-only feature mean/std) and ``summary.json``.
    The keyword arguments default to the protocol in the module docstring: training windows of
    `window_s` every `stride_s` and every `head_stride_s` (None: no extra starts) within the first `stride_s`,
    validation/test windows of `eval_window_s` every `eval_window_s` (None:
    the training windowing); `peak_c_rate` scales the test cycle and `train_peak_c_rates` every training
    and validation cycle (one recording per rate); `max_duration_s` truncates every recording (for quick
    tests; None runs each to the cut-off).
    Returns the JSON-able summary.
    """
    out_dir = Path(out_dir)
    started = time.perf_counter()
    records: dict[str, list[tuple[str, SocRecord, str, float, float]]] = {"train": [], "val": [], "test": []}
    recordings, cached = [], 0
    train_rates = tuple(float(r) for r in train_peak_c_rates)
    plan = _plan(tuple(train_cycles), tuple(train_temperatures_c), tuple(test_temperatures_c),
                 float(peak_c_rate), train_rates)
    for split, cycle, temp, rate in plan:
        spec = SimSpec(_SIM_NAMES.get(cycle, cycle), temp, rate, max_duration_s)
        clean, hit = simulate_cached(spec, out_dir / "sim", cycle_dir)
        cached += hit
        name = recording_name(cycle, temp, rate)
        rng = np.random.default_rng([seed, zlib.crc32(name.encode())])
        noisy = add_sensor_noise(clean, rng).assign(soc=coulomb_count(clean["current_a"].to_numpy()))
        path = out_dir / "traces" / f"{name}.csv"
        write_soc_csv(path, noisy)
        record = read_soc_csv(path)
        records[split].append((name, record, cycle, temp, rate))
        recordings.append(
            {
                "name": name,
                "split": split,
                "cycle": cycle,
                "ambient_c": temp,
                "peak_c_rate": rate,
                "duration_s": len(clean),
                "discharged_ah": round(float(np.trapezoid(clean["current_a"], dx=1.0)) / 3600.0, 4),
                "final_soc": round(float(noisy["soc"].iloc[-1]), 4),
                "min_voltage_v": round(float(clean["voltage_v"].min()), 4),
                "max_cell_temperature_c": round(float(clean["temperature_c"].max()), 2),
            }
        )

    train_raw = np.concatenate([r.frame[list(FEATURES)].to_numpy(np.float64) for _, r, *_ in records["train"]])
    stats = {
        "features": list(FEATURES),
        "mean": [float(m) for m in train_raw.mean(axis=0)],
        "std": [float(s) for s in train_raw.std(axis=0)],
        "window_s": window_s,
        "stride_s": stride_s,
        "head_stride_s": head_stride_s,
        "eval_window_s": eval_window_s or window_s,
        "capacity_ah": CAPACITY_AH,
    }
    write_json(out_dir / "stats.json", stats)

    counts = {}
    for split, items in records.items():
        xs, ys, metas = [], [], []
        length, stride = (window_s, stride_s) if split == "train" or not eval_window_s else (eval_window_s,) * 2
        head = head_stride_s if split == "train" else None
        for name, record, cycle, temp, rate in items:
            x, y, starts = make_windows(featurise(record.frame, stats), record.soc, length, stride, head)
            xs.append(x)
            ys.append(y)
            metas.append(pd.DataFrame(dict(zip(_META_COLUMNS, (name, cycle, temp, rate, starts), strict=True))))
        sequences = SequenceSet(
            np.concatenate([np.zeros((0, length, len(FEATURES)), np.float32), *xs]),
            np.concatenate([np.zeros((0, length), np.float32), *ys]),
            pd.concat(metas, ignore_index=True) if metas else pd.DataFrame(columns=list(_META_COLUMNS)),
        )
        sequences.save(out_dir / split)
        counts[split] = {
            "windows": len(sequences),
            "recordings": len(items),
            "samples": int(sum(len(r.frame) for _, r, *_ in items)),
        }

    summary = {
        "task": "soc",
        "counts": counts,
        "recordings": recordings,
        "simulations_cached": cached,
        "simulations_run": len(recordings) - cached,
        "seconds": round(time.perf_counter() - started, 1),
        "parameters": {
            "seed": seed,
            "model": f"PyBaMM {MODEL_NAME} + lumped thermal",
            "parameter_set": PARAMETER_SET,
            "capacity_ah": CAPACITY_AH,
            "cutoff_v": LOWER_CUTOFF_V,
            "peak_c_rate": peak_c_rate,
            "train_peak_c_rates": list(train_rates),
            "window_s": window_s,
            "stride_s": stride_s,
            "head_stride_s": head_stride_s,
            "eval_window_s": eval_window_s,
            "noise_sigma": NOISE_SIGMA,
            "sample_rate_hz": 1,
            "max_duration_s": max_duration_s,
            "train_cycles": list(train_cycles),
            "train_temperatures_c": list(train_temperatures_c),
            "test_temperatures_c": list(test_temperatures_c),
            "val_recordings": sorted(name for name, *_ in records["val"]),
        },
        "sources": {
            "UDDS (FUDS), US06, WLTC": "PyBaMM 24.1 drive-cycle files, BSD-3-Clause (see assets/soc/)",
            "DST": "USABC Electric Vehicle Battery Test Procedures Manual rev. 2 (1996), constructed",
        },
    }
    write_json(out_dir / "summary.json", summary)
    return summary


def load_split(data_dir: Path, split: str) -> SequenceSet:
    """Windows of one split ("train", "val" or "test") written by `build_dataset`."""
    if split not in ("train", "val", "test"):
        raise MemgruError(f"unknown split {split!r}; choose train, val or test")
    return SequenceSet.load(Path(data_dir) / split)


def load_stats(data_dir: Path) -> dict:
    """The train-split normalisation statistics (``stats.json``) written by `build_dataset`."""
    path = Path(data_dir) / "stats.json"
    if not path.is_file():
        raise MemgruError(f"no normalisation statistics at {path}; build the SOC data first")
    return json.loads(path.read_text())


def load_trace(
    data_dir: Path, cycle: str = TEST_CYCLE, ambient_c: float = 25.0, peak_c_rate: float = PEAK_C_RATE
) -> SocRecord:
    """A whole recording (noisy 1 Hz measurements and true SOC) for sequence-to-sequence evaluation."""
    path = Path(data_dir) / "traces" / f"{recording_name(cycle, ambient_c, peak_c_rate)}.csv"
    if not path.is_file():
        raise MemgruError(f"no SOC trace {path.name} in {path.parent}; build the SOC data first")
    return read_soc_csv(path)


@dataclass
class SocInput:
    """A user's SOC CSV made model-ready."""

    x: np.ndarray
    """Standardised inputs float32 [1, L, 3]: the whole 1 Hz trace as one sequence (FEATURES order)."""
    record: SocRecord
    """The validated trace in physical units (for plots), its true SOC if given, and notes."""


def read_user_input(path: str | Path, stats: dict) -> SocInput:
    """Validate a user CSV (format: `memgru.tasks.soc_csv`) and standardise it with the model's `stats`."""
    record = read_soc_csv(path)
    return SocInput(x=featurise(record.frame, stats)[None], record=record)
