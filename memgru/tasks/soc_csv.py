"""The SOC task's CSV format: validation of user files and writing of the built traces.

Format (one header line, comma separated, one row per sample, column names case-insensitive):

- ``time_s`` (s): sample time, strictly increasing; 1 Hz expected (see resampling below)
- ``current_a`` (A): cell current, **positive = discharge**, negative = charge / regeneration
- ``voltage_v`` (V): terminal voltage of one cell (not a pack)
- ``temperature_c`` (°C): cell (surface) temperature
- ``soc`` (%): optional true state of charge in percent, 0-100

Decisions, each with a one-line error when violated:
- Time: rows with steps of 1 s (±0.01 s) are used as they are. Otherwise, when no gap exceeds
  ``MAX_GAP_S``, every column is linearly interpolated onto a 1 Hz grid starting at the first
  sample (noted in ``SocRecord.notes``). Larger gaps, repeated or decreasing times are errors.
- Units: values that look like mA, mV, kelvin or milliseconds are rejected with the conversion to
  apply rather than converted silently. A current whose sign makes the voltage *rise* when the
  discharge current rises (the opposite of every real cell's ohmic drop) is rejected as inverted.
- ``soc`` is read as percent; a column whose values all lie in 0..1 is read as a fraction (noted).
- Files over ``MAX_CSV_BYTES`` are refused before they are read; binary files are refused from
  their first bytes.
"""

from __future__ import annotations

import io
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from memgru.errors import MemgruError
from memgru.tasks.common import decode_text, read_user_file

REQUIRED_COLUMNS = ("time_s", "current_a", "voltage_v", "temperature_c")
"""Columns every SOC CSV must have."""
SOC_COLUMN = "soc"
"""Optional column with the true SOC in percent."""
MAX_CSV_BYTES = 20_000_000
"""Largest accepted file (bytes), about 600,000 rows or a week at 1 Hz."""
MAX_STEPS = 500_000
"""Longest accepted trace after resampling to 1 Hz (samples, about 139 h)."""
MIN_STEPS = 60
"""Shortest accepted trace (samples at 1 Hz)."""
MAX_GAP_S = 10.0
"""Largest time step that is bridged by linear interpolation (s)."""
CELL_VOLTAGE_RANGE_V = (1.5, 5.0)
"""Plausible terminal voltage of one lithium-ion cell (V)."""
MAX_CELL_CURRENT_A = 100.0
"""Largest plausible current magnitude of one cell (A)."""
TEMPERATURE_RANGE_C = (-40.0, 90.0)
"""Plausible cell temperature (°C)."""

# Unit-suffixed names users commonly write, mapped to the fix.
_UNIT_HINTS = {
    "current_ma": "current_a is in amperes: divide milliamps by 1000",
    "voltage_mv": "voltage_v is in volts: divide millivolts by 1000",
    "temperature_k": "temperature_c is in degrees Celsius: subtract 273.15 from kelvin",
    "time_ms": "time_s is in seconds: divide milliseconds by 1000",
}


@dataclass
class SocRecord:
    """A validated SOC trace at 1 Hz in physical units."""

    frame: pd.DataFrame
    """Columns time_s (s), current_a (A, + = discharge), voltage_v (V), temperature_c (°C), and soc
    (fraction 0..1) when the file had it; one row per second."""
    notes: list[str] = field(default_factory=list)
    """What was adjusted on the way in (resampling, SOC read as a fraction), for the user to see."""

    @property
    def soc(self) -> np.ndarray | None:
        """True SOC as float32 [L] fraction, or None when the file carried no truth."""
        if SOC_COLUMN not in self.frame:
            return None
        return self.frame[SOC_COLUMN].to_numpy(np.float32)


def _read_text(path: Path, max_bytes: int) -> str:
    """Return the file's text after the size, emptiness and binary checks (before any parsing)."""
    expected = f"a CSV with columns {', '.join(REQUIRED_COLUMNS)}"
    return decode_text(read_user_file(path, max_bytes, "SOC CSV"), path.name, expected)


def _parse(text: str, name: str) -> pd.DataFrame:
    """Parse CSV text into a frame of float64 columns named in lower case, or raise MemgruError."""
    try:
        frame = pd.read_csv(io.StringIO(text), skipinitialspace=True)
    except pd.errors.EmptyDataError:
        raise MemgruError(f"{name} holds no CSV data") from None
    except pd.errors.ParserError as err:
        raise MemgruError(f"{name} is not a well-formed CSV: {str(err).splitlines()[-1]}") from None
    frame.columns = [str(c).strip().lower() for c in frame.columns]
    for column, hint in _UNIT_HINTS.items():
        if column in frame.columns:
            raise MemgruError(f"{name} has a column {column}; {hint} and name the column accordingly")
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if missing:
        found = ", ".join(frame.columns[:8]) or "none"
        raise MemgruError(
            f"{name} is missing column(s) {', '.join(missing)} (found: {found}); "
            f"expected {', '.join(REQUIRED_COLUMNS)} and optional {SOC_COLUMN}"
        )
    wanted = [*REQUIRED_COLUMNS, *([SOC_COLUMN] if SOC_COLUMN in frame.columns else [])]
    frame = frame[wanted]
    if frame.empty:
        raise MemgruError(f"{name} has a header but no data rows")
    for column in wanted:
        values = pd.to_numeric(frame[column], errors="coerce")
        bad = values.isna() & frame[column].notna()
        if bad.any():
            row = int(np.argmax(bad.to_numpy()))
            raise MemgruError(
                f"{name}: column {column} has a non-numeric value {frame[column].iloc[row]!r} at line {row + 2}"
            )
        array = values.to_numpy(np.float64)
        finite = np.isfinite(array)
        if not finite.all():
            row = int(np.argmin(finite))
            raise MemgruError(f"{name}: column {column} has a missing, NaN or infinite value at line {row + 2}")
        frame = frame.assign(**{column: array})
    return frame.reset_index(drop=True)


def _to_1hz(frame: pd.DataFrame, name: str, notes: list[str]) -> pd.DataFrame:
    """Check the time column and return the frame on an exact 1 Hz grid starting at the first sample."""
    t = frame["time_s"].to_numpy()
    if len(t) < 2:
        raise MemgruError(f"{name} has only {len(t)} row; need at least {MIN_STEPS} seconds of data")
    dt = np.diff(t)
    if (dt <= 0).any():
        row = int(np.argmax(dt <= 0))
        raise MemgruError(
            f"{name}: time_s is not strictly increasing at line {row + 3} ({t[row]:g} then {t[row + 1]:g})"
        )
    median = float(np.median(dt))
    if 0.5 <= median / 1000.0 <= 2.0:
        raise MemgruError(f"{name}: time_s steps are about {median:g}, which looks like milliseconds; give seconds")
    if np.all(np.abs(dt - 1.0) <= 0.01):
        return frame.assign(time_s=t[0] + np.arange(len(t), dtype=np.float64))
    if dt.max() > MAX_GAP_S:
        row = int(np.argmax(dt))
        raise MemgruError(
            f"{name}: time gap of {dt[row]:g} s at line {row + 3} (more than {MAX_GAP_S:g} s); "
            "split the file at the gap"
        )
    steps = int(np.floor(t[-1] - t[0])) + 1
    if steps > MAX_STEPS:  # checked before the grid is allocated
        raise MemgruError(f"{name} spans {steps} s, over the {MAX_STEPS} s limit for one SOC trace")
    grid = t[0] + np.arange(steps, dtype=np.float64)
    notes.append(f"resampled from a median step of {median:.3g} s to 1 Hz by linear interpolation")
    return pd.DataFrame({c: np.interp(grid, t, frame[c].to_numpy()) if c != "time_s" else grid for c in frame})


def _check_units(frame: pd.DataFrame, name: str) -> None:
    """Reject values whose magnitude betrays the wrong unit or a pack instead of a cell."""
    v, i, temp = (frame[c].to_numpy() for c in ("voltage_v", "current_a", "temperature_c"))
    v_median = float(np.median(v))
    if 1000 * CELL_VOLTAGE_RANGE_V[0] <= v_median <= 1000 * CELL_VOLTAGE_RANGE_V[1]:
        raise MemgruError(f"{name}: voltage_v has median {v_median:g}, which looks like millivolts; give volts")
    low, high = CELL_VOLTAGE_RANGE_V
    if v.min() < low or v.max() > high:
        raise MemgruError(
            f"{name}: voltage_v spans {v.min():g}..{v.max():g} V, outside one cell's {low:g}..{high:g} V "
            "(packs are not supported: give per-cell voltage)"
        )
    i_max = float(np.abs(i).max())
    if i_max > MAX_CELL_CURRENT_A:
        hint = "which looks like milliamps; give amperes" if i_max / 1000 <= MAX_CELL_CURRENT_A else "beyond one cell"
        raise MemgruError(f"{name}: current_a reaches {i_max:g}, {hint}")
    t_median = float(np.median(temp))
    if 200.0 <= t_median <= 400.0:
        raise MemgruError(f"{name}: temperature_c has median {t_median:g}, which looks like kelvin; subtract 273.15")
    low, high = TEMPERATURE_RANGE_C
    if temp.min() < low or temp.max() > high:
        raise MemgruError(
            f"{name}: temperature_c spans {temp.min():g}..{temp.max():g} °C, outside {low:g}..{high:g} °C"
        )


def current_sign_slope(current_a: np.ndarray, voltage_v: np.ndarray, min_step_a: float = 0.5) -> float | None:
    """Least-squares slope dV/dI (Ω) over 1 s steps where the current changes by more than `min_step_a`.

    A real cell's voltage drops when its discharge current rises, so with positive = discharge the
    slope is minus the cell's ohmic resistance (negative). Returns None with fewer than 10 such steps.
    """
    d_i, d_v = np.diff(current_a), np.diff(voltage_v)
    steps = np.abs(d_i) > min_step_a
    if steps.sum() < 10:
        return None
    return float(np.sum(d_i[steps] * d_v[steps]) / np.sum(d_i[steps] ** 2))


def _check_soc(frame: pd.DataFrame, name: str, notes: list[str]) -> pd.DataFrame:
    """Convert the soc column to a fraction (percent expected, fraction detected) and range-check it."""
    soc = frame[SOC_COLUMN].to_numpy()
    if soc.min() >= 0.0 and soc.max() <= 1.0:
        notes.append("soc values all lie in 0..1, read as a fraction rather than percent")
    else:
        if soc.min() < -5.0 or soc.max() > 105.0:
            raise MemgruError(f"{name}: soc spans {soc.min():g}..{soc.max():g}, outside 0..100 percent")
        soc = soc / 100.0
    return frame.assign(**{SOC_COLUMN: soc})


def _check_soc_sign(frame: pd.DataFrame, name: str) -> None:
    """Reject a current whose net charge contradicts a clear (> 5 points) change of the soc column."""
    soc = frame[SOC_COLUMN].to_numpy()
    drawn = float(np.sum(frame["current_a"].to_numpy()[:-1]))  # A s over 1 s steps, + = discharged
    if abs(soc[-1] - soc[0]) > 0.05 and abs(drawn) > 0 and np.sign(drawn) == np.sign(soc[-1] - soc[0]):
        raise MemgruError(
            f"{name}: soc {'rises' if soc[-1] > soc[0] else 'falls'} while the net current_a says "
            "the opposite; "
            "memgru expects positive current = discharge (multiply current_a by -1)"
        )


def read_soc_csv(path: str | Path, *, max_bytes: int = MAX_CSV_BYTES) -> SocRecord:
    """Read and validate a SOC CSV (format in the module docstring) into a 1 Hz `SocRecord`.

    Raises MemgruError with one line naming the problem for any file that is not a usable trace.
    """
    path = Path(path)
    notes: list[str] = []
    frame = _parse(_read_text(path, max_bytes), path.name)
    frame = _to_1hz(frame, path.name, notes)
    if len(frame) < MIN_STEPS:
        raise MemgruError(f"{path.name} covers {len(frame)} s; need at least {MIN_STEPS} s at 1 Hz")
    if len(frame) > MAX_STEPS:
        raise MemgruError(f"{path.name} has {len(frame)} samples, over the {MAX_STEPS} limit for one SOC trace")
    _check_units(frame, path.name)
    slope = current_sign_slope(frame["current_a"].to_numpy(), frame["voltage_v"].to_numpy())
    if slope is not None and slope > 0:
        raise MemgruError(
            f"{path.name}: the voltage rises when current_a rises, so the current sign looks inverted; "
            "memgru expects positive current = discharge (multiply current_a by -1)"
        )
    if SOC_COLUMN in frame:
        frame = _check_soc(frame, path.name, notes)
        _check_soc_sign(frame, path.name)
    return SocRecord(frame=frame, notes=notes)


def write_soc_csv(path: str | Path, frame: pd.DataFrame) -> None:
    """Write a trace (time_s, current_a, voltage_v, temperature_c and optional soc as a fraction) in the
    user CSV format, rounded to the sensors' resolution: 1 s, 1 mA, 0.1 mV, 0.01 °C, 0.001 % SOC."""
    out = pd.DataFrame(
        {
            "time_s": frame["time_s"].round().astype(np.int64),
            "current_a": frame["current_a"].round(3),
            "voltage_v": frame["voltage_v"].round(4),
            "temperature_c": frame["temperature_c"].round(2),
        }
    )
    if SOC_COLUMN in frame:
        out[SOC_COLUMN] = (100.0 * frame[SOC_COLUMN]).round(3)
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    out.to_csv(path, index=False, lineterminator="\n")
