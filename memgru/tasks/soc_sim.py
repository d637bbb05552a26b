"""Drive-cycle current profiles and the PyBaMM cell simulation behind the SOC data set.

The cell is an LG M50 21700 (NMC811 / graphite-SiOx, 5 Ah nominal) simulated with PyBaMM's SPMe
(single particle model with electrolyte) and a lumped thermal model. Parameters are PyBaMM's
``ORegan2022`` set: Chen2020's LG M50 parameters extended with measured temperature dependence
(Arrhenius diffusivities and kinetics, entropic OCP change, thermal properties). Chen2020 alone has
no temperature dependence, so FUDS at 0, 25 and 45 °C would be nearly identical there.

Sign convention everywhere in memgru: positive current = discharge (PyBaMM's convention).
"""

from __future__ import annotations

import hashlib
import json
import math
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from memgru.errors import MemgruError

DRIVE_CYCLE_DIR = Path(__file__).resolve().parents[2] / "assets" / "soc" / "drive_cycles"
"""Committed 1 Hz drive-cycle profiles (UDDS, US06, WLTC) copied from the PyBaMM 24.1 wheel."""

PARAMETER_SET = "ORegan2022"
"""PyBaMM parameter set: LG M50 (Chen2020) with temperature-dependent properties (O'Regan et al. 2022)."""
MODEL_NAME = "SPMe"
"""PyBaMM model: single particle model with electrolyte, lumped thermal submodel."""
CAPACITY_AH = 5.0
"""Nominal capacity of the simulated cell (A h); SOC is coulomb-counted against it."""
LOWER_CUTOFF_V = 2.5
"""Discharge ends when the terminal voltage reaches this value (V)."""
SAFETY_UPPER_V = 4.4
"""Simulation stops above this voltage (V); regenerative pulses at full charge overshoot 4.2 V briefly."""
FULL_CHARGE_V = 4.2
"""Open-circuit voltage that defines 100 % SOC (V)."""

# USABC Dynamic Stress Test (Electric Vehicle Battery Test Procedures Manual, rev. 2, 1996):
# 360 s of (duration s, % of peak power), positive = discharge, negative = regenerative charge.
DST_STEPS: tuple[tuple[int, float], ...] = (
    (16, 0.0),
    (28, 12.5),
    (12, 25.0),
    (8, -12.5),
    (16, 0.0),
    (24, 12.5),
    (12, 25.0),
    (8, -12.5),
    (16, 0.0),
    (24, 12.5),
    (12, 25.0),
    (8, -12.5),
    (16, 0.0),
    (36, 12.5),
    (8, 100.0),
    (24, 62.5),
    (8, -25.0),
    (32, 25.0),
    (8, -50.0),
    (44, 0.0),
)

CYCLES = ("UDDS", "US06", "WLTC", "DST")
"""Drive cycles known to the simulator; FUDS is the UDDS schedule (Federal Urban Driving Schedule)."""


def dst_profile() -> np.ndarray:
    """The USABC DST as a 1 Hz shape, float64 [360], in fractions of peak demand (positive = discharge)."""
    return np.concatenate([np.full(duration, percent / 100.0) for duration, percent in DST_STEPS])


def cycle_shape(cycle: str, cycle_dir: Path = DRIVE_CYCLE_DIR) -> np.ndarray:
    """One repetition of `cycle` at 1 Hz, float64 [T], scaled so that its peak discharge is 1.

    UDDS and US06 are current profiles; WLTC (power, kW) and DST (% power) are applied as current
    profiles proportional to their power demand, the usual practice for cell-level drive-cycle tests.
    """
    if cycle == "DST":
        shape = dst_profile()
    elif cycle in CYCLES:
        path = Path(cycle_dir) / f"{cycle}.csv"
        if not path.is_file():
            raise MemgruError(f"drive-cycle profile {path} is missing; restore assets/soc/drive_cycles/")
        shape = pd.read_csv(path, comment="#").iloc[:, 1].to_numpy(np.float64)
    else:
        raise MemgruError(f"unknown drive cycle {cycle!r}; choose one of {', '.join(CYCLES)}")
    return shape / shape.max()


@dataclass(frozen=True)
class SimSpec:
    """Everything that determines one simulated discharge (and hence its cache key)."""

    cycle: str
    """Drive cycle name, one of CYCLES."""
    ambient_c: float
    """Ambient (and initial cell) temperature (°C)."""
    peak_c_rate: float = 2.0
    """Peak discharge current of the scaled cycle as a multiple of CAPACITY_AH (1/h); 2.0 means 10 A."""
    max_duration_s: int | None = None
    """Stop after this many seconds even above the cut-off voltage (None: run to cut-off)."""

    def key(self, shape: np.ndarray) -> str:
        """Hex digest of the spec, the profile and the simulator versions; changes whenever results could."""
        import pybamm

        blob = json.dumps(
            {
                "spec": [self.cycle, float(self.ambient_c), float(self.peak_c_rate), self.max_duration_s],
                "profile": hashlib.sha256(np.ascontiguousarray(shape, np.float64).tobytes()).hexdigest(),
                "pybamm": pybamm.__version__,
                "model": MODEL_NAME,
                "parameters": PARAMETER_SET,
                "limits": [CAPACITY_AH, LOWER_CUTOFF_V, SAFETY_UPPER_V, FULL_CHARGE_V],
            },
            sort_keys=True,
        )
        return hashlib.sha256(blob.encode()).hexdigest()[:16]


def _import_pybamm():
    """Import PyBaMM without its interactive telemetry prompt (it would block a CLI for 10 s)."""
    os.environ.setdefault("PYBAMM_DISABLE_TELEMETRY", "true")
    import pybamm

    return pybamm


def simulate(spec: SimSpec, cycle_dir: Path = DRIVE_CYCLE_DIR) -> pd.DataFrame:
    """Simulate a discharge from full charge under the repeated drive cycle until the cut-off voltage.

    Returns the noise-free 1 Hz record: columns time_s (s, 0, 1, ...), current_a (A, positive =
    discharge), voltage_v (terminal voltage, V) and temperature_c (lumped cell temperature, °C).
    """
    pybamm = _import_pybamm()
    shape = cycle_shape(spec.cycle, cycle_dir)
    mean_current_a = float(shape.mean()) * spec.peak_c_rate * CAPACITY_AH
    if mean_current_a <= 0:
        raise MemgruError(f"drive cycle {spec.cycle} does not discharge the cell on average")
    # Enough repetitions to empty the cell with 50 % margin; the cut-off event ends the run earlier.
    repeats = math.ceil(1.5 * CAPACITY_AH * 3600 / (mean_current_a * len(shape))) + 1
    current = np.tile(shape, repeats) * spec.peak_c_rate * CAPACITY_AH
    if spec.max_duration_s is not None:
        current = current[: spec.max_duration_s + 1]
    t = np.arange(len(current), dtype=np.float64)

    params = pybamm.ParameterValues(PARAMETER_SET)
    kelvin = 273.15 + float(spec.ambient_c)
    params.update(
        {
            "Ambient temperature [K]": kelvin,
            "Initial temperature [K]": kelvin,
            "Open-circuit voltage at 100% SOC [V]": FULL_CHARGE_V,
            "Upper voltage cut-off [V]": FULL_CHARGE_V,
            "Lower voltage cut-off [V]": LOWER_CUTOFF_V,
        }
    )
    params.set_initial_state(1.0)
    params.update(
        {
            "Upper voltage cut-off [V]": SAFETY_UPPER_V,
            "Current function [A]": pybamm.Interpolant(t, current, pybamm.t, interpolator="linear"),
        }
    )
    model = pybamm.lithium_ion.SPMe({"thermal": "lumped"})
    sim = pybamm.Simulation(model, parameter_values=params, solver=pybamm.IDAKLUSolver())
    solution = sim.solve(t_eval=[0.0, t[-1]], t_interp=t)
    if spec.max_duration_s is None and "Minimum voltage" not in str(solution.termination):
        raise MemgruError(
            f"simulation of {spec.cycle} at {spec.ambient_c:g} °C ended with {solution.termination!r} "
            f"instead of reaching the {LOWER_CUTOFF_V} V cut-off"
        )
    grid = np.arange(math.floor(solution.t[-1]) + 1, dtype=np.float64)
    return pd.DataFrame(
        {
            "time_s": grid,
            "current_a": solution["Current [A]"](t=grid),
            "voltage_v": solution["Voltage [V]"](t=grid),
            "temperature_c": solution["Volume-averaged cell temperature [K]"](t=grid) - 273.15,
        }
    )


def simulate_cached(spec: SimSpec, cache_dir: Path, cycle_dir: Path = DRIVE_CYCLE_DIR) -> tuple[pd.DataFrame, bool]:
    """`simulate` with an on-disk cache keyed by `SimSpec.key`; returns (record, whether it was cached)."""
    shape = cycle_shape(spec.cycle, cycle_dir)
    path = Path(cache_dir) / f"{spec.cycle}_{spec.ambient_c:g}C_{spec.key(shape)}.npz"
    if path.is_file():
        with np.load(path, allow_pickle=False) as data:
            return pd.DataFrame({name: data[name] for name in data.files}), True
    record = simulate(spec, cycle_dir)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp.npz")
    np.savez_compressed(tmp, **{name: record[name].to_numpy() for name in record.columns})
    tmp.replace(path)
    return record, False
