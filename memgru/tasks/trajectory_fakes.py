"""False-track generator: physically plausible fakes derived from real ADS-B windows.

Every family takes a real window [P, 7] (see `trajectory_tracks.POINT_COLUMNS`) and a magnitude
m in [0, 1] and returns a false window with the same time stamps, reported at the same resolution
as the real one (`quantization_of`), so neither sampling nor rounding betrays it. m = 0 makes the
fake indistinguishable from (or identical in kind to) real traffic, m = 1 is a blatant fake; the
physical meaning of m per family is in `FAMILY_DOCS`. Families that borrow a second window
(replay, splice) take it from another aircraft of the same split, so test fakes only use test
tracks.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import pandas as pd

from memgru.errors import MemgruError
from memgru.tasks.trajectory_tracks import (
    ALT,
    GS,
    KT,
    LAT,
    LON,
    TRK,
    VR,
    T,
    apply_quantization,
    heading_unit,
    jitter_positions,
    path_at_altitude,
    points_on_path,
    quantization_of,
    wrap_deg,
)

G = 9.80665
"""Standard gravity (m/s²), for the turn rate of a coordinated turn at a given bank angle."""

FAMILY_DOCS = {
    "ghost_cv": "kinematic ghost in straight, constant-velocity flight from the real window's state, "
                "with the real window's own wander of speed, track and vertical rate and realistic report "
                "timing noise; m adds the naive synthetic noise of a generator, isotropic i.i.d. position "
                "noise of m x 150 m (real position noise runs along the track)",
    "ghost_turn": "kinematic ghost flying a coordinated turn (heading change 20-120 deg, 5 s roll in/out) "
                  "between straight legs, wander and noise as ghost_cv; m sets the bank angle, "
                  "15 deg + m x 45 deg (airliners stay within 25-30 deg)",
    "ghost_climb": "kinematic ghost levelling into a climb or descent for 60-200 s and levelling off, "
                   "wander and noise as ghost_cv; m sets the rate, 500 + m x 5,500 ft/min",
    "replay": "another aircraft's real window replayed now with its latitude/longitude shifted naively "
              "in degrees (latitude by m x 8 deg, which stretches east-west distances by "
              "cos(lat')/cos(lat)), altitude offset by up to 2,000 ft and a playback clock slow by "
              "up to m x 5 %; reported fields are replayed unchanged",
    "pull_off": "the real window's positions are pulled away with a constant acceleration of m x 0.3 m/s² "
                "(45-135 deg off the track) from a random onset; reported velocity unchanged",
    "velocity_inconsistency": "one reported field biased from a random onset: groundspeed by m x 40 kt, "
                              "or track by m x 20 deg, or vertical rate by m x 2,000 ft/min; positions unchanged",
    "altitude_ramp": "the reported altitude ramps away at m x 3,000 ft/min from a random onset while the "
                     "reported vertical rate stays as it was",
    "speed_ramp": "positions and reported groundspeed consistently follow a speed ramp of m x 1 m/s² from "
                  "a random onset (an airliner in level flight manages about 0.2 m/s²)",
    "splice": "the first part of the real window continued by another aircraft's real window, moved so "
              "that positions are continuous, with a heading jump of m x 60 deg, an altitude jump of "
              "m x 1,500 ft and a speed mismatch of m x 20 % at the join; each part self-consistent",
}
"""What each false-track family does and what its magnitude knob means physically."""
FAMILIES = tuple(FAMILY_DOCS)
"""The false-track families, in a fixed order."""


@dataclass(frozen=True)
class Knob:
    """A physical quantity that a family's magnitude m sets: `at_zero` + `per_unit` x m, in `unit`."""

    quantity: str
    at_zero: float
    per_unit: float
    unit: str

    def value(self, m: float) -> float:
        """The quantity at magnitude `m`, in `unit`."""
        return self.at_zero + self.per_unit * m


FAMILY_KNOBS: dict[str, tuple[Knob, ...]] = {
    "ghost_cv": (Knob("isotropic position noise (std)", 0.0, 150.0, "m"),),
    "ghost_turn": (Knob("bank angle", 15.0, 45.0, "deg"),),
    "ghost_climb": (Knob("climb or descent rate", 500.0, 5500.0, "ft/min"),),
    "replay": (Knob("latitude shift", 0.0, 8.0, "deg"), Knob("playback clock slow by up to", 0.0, 5.0, "%")),
    "pull_off": (Knob("pull-off acceleration", 0.0, 0.3, "m/s²"),),
    "velocity_inconsistency": (Knob("groundspeed bias", 0.0, 40.0, "kt"), Knob("track bias", 0.0, 20.0, "deg"),
                               Knob("vertical rate bias", 0.0, 2000.0, "ft/min")),
    "altitude_ramp": (Knob("altitude ramp", 0.0, 3000.0, "ft/min"),),
    "speed_ramp": (Knob("along-track acceleration", 0.0, 1.0, "m/s²"),),
    "splice": (Knob("heading jump", 0.0, 60.0, "deg"), Knob("altitude jump", 0.0, 1500.0, "ft"),
               Knob("speed mismatch", 0.0, 20.0, "%")),
}
"""What the magnitude knob of each family sets physically (the generator's own constants, `FAMILY_DOCS` in
numbers); velocity_inconsistency biases one of its three fields per fake, replay and splice set all of theirs."""


def _knob(family: str, index: int = 0) -> Knob:
    return FAMILY_KNOBS[family][index]


PickOther = Callable[[], np.ndarray]


def _trend_and_wander(t: np.ndarray, v: np.ndarray) -> tuple[float, np.ndarray]:
    """Value at t = 0 of the least-squares line through `v`(`t`), and `v`'s residual from that line."""
    slope, intercept = np.polyfit(t, v, 1)
    return float(intercept), v - (slope * t + intercept)


def _smooth_step(t: np.ndarray, start: float, rise: float) -> np.ndarray:
    """0 before `start`, 1 after `start + rise`, linear in between."""
    return np.clip((t - start) / rise, 0.0, 1.0)


def _set_path(out: np.ndarray, base: np.ndarray, path: np.ndarray) -> None:
    """Write a path flown (m, `path_at_altitude` frame from the base's first point) at `out`'s altitudes
    into `out`'s latitude/longitude."""
    out[:, LAT], out[:, LON] = points_on_path(path, base[0, LAT:LON + 1], out[:, ALT])


def _ghost(base: np.ndarray, m: float, rng: np.random.Generator, maneuver: str, timing_noise: bool) -> np.ndarray:
    """Kinematic ghost starting from the base window's state (see FAMILY_DOCS ghost_*).

    The wander (wind, autopilot, sensor noise) of the reported groundspeed, track and vertical
    rate is the base window's own, taken as its residual from a straight line, so the ghost moves
    as irregularly as the real aircraft did; positions and altitudes are integrated from these
    velocities at 1 s, sampled at the base's times, and get 1.5 m of position noise plus (with
    `timing_noise`) the report timing noise of `jitter_positions`. The magnitude acts as
    FAMILY_DOCS says.
    """
    times = base[:, T] - base[0, T]
    dt = 1.0
    tf = np.arange(0.0, times[-1] + dt / 2, dt)
    n = len(tf)
    duration = tf[-1]
    gs0, gs_wander = _trend_and_wander(times, base[:, GS])
    trk0, trk_wander = _trend_and_wander(times, np.degrees(np.unwrap(np.radians(base[:, TRK]))))
    vr0, vr_wander = _trend_and_wander(times, base[:, VR])
    speed0 = max(gs0, 120.0) * KT
    turn_rate = np.zeros(n)
    vr_nom = np.full(n, float(np.clip(vr0, -1500.0, 1500.0)) if maneuver == "cv" else 0.0)
    if maneuver == "turn":
        bank = np.radians(_knob("ghost_turn").value(m))
        rate = np.degrees(G * np.tan(bank) / speed0) * rng.choice([-1.0, 1.0])
        change = rng.uniform(20.0, 120.0)
        length = change / abs(rate)
        start = rng.uniform(0.0, max(duration - length, 0.0) * 0.8)
        turn_rate = rate * (_smooth_step(tf, start, 5.0) - _smooth_step(tf, start + length, 5.0))
    elif maneuver == "climb":
        rate = _knob("ghost_climb").value(m) * rng.choice([-1.0, 1.0])
        start = rng.uniform(0.0, 0.4 * duration)
        length = rng.uniform(60.0, 200.0)
        vr_nom = rate * (_smooth_step(tf, start, 10.0) - _smooth_step(tf, start + length, 10.0))
    speed = speed0 + np.interp(tf, times, gs_wander) * KT
    heading = trk0 + np.cumsum(turn_rate) * dt + np.interp(tf, times, trk_wander)
    vr = vr_nom + np.interp(tf, times, vr_wander)
    alt = base[0, ALT] + np.concatenate([[0.0], np.cumsum(0.5 * (vr[1:] + vr[:-1]) / 60.0 * dt)])
    vel = heading_unit(heading) * speed[:, None]
    path = np.concatenate([[[0.0, 0.0]], np.cumsum(0.5 * (vel[1:] + vel[:-1]) * dt, axis=0)])
    idx = np.round(times / dt).astype(int)
    out = base.copy()
    pos_sigma = 1.5 + (_knob("ghost_cv").per_unit * m if maneuver == "cv" else 0.0)
    out[:, ALT] = alt[idx]
    _set_path(out, base, path[idx] + rng.standard_normal((len(idx), 2)) * pos_sigma)
    out[:, GS] = speed[idx] / KT
    out[:, TRK] = heading[idx] % 360.0
    out[:, VR] = vr[idx]
    return jitter_positions(out, rng) if timing_noise else out


def _onset(base: np.ndarray, rng: np.random.Generator) -> float:
    """A random onset time (s after the window start) in the first half of the window."""
    return rng.uniform(0.0, 0.5 * (base[-1, T] - base[0, T]))


def _replay(base: np.ndarray, m: float, rng: np.random.Generator, other: np.ndarray) -> np.ndarray:
    out = other.copy()
    out[:, T] = base[:, T]
    clock = 1.0 - m * (_knob("replay", 1).per_unit / 100.0) * rng.uniform(0.5, 1.0)
    tau = (other[:, T] - other[0, T]) * clock + other[0, T]
    for col in (LAT, LON, ALT, GS, VR):
        out[:, col] = np.interp(tau, other[:, T], other[:, col])
    trk = np.degrees(np.unwrap(np.radians(other[:, TRK])))
    out[:, TRK] = np.interp(tau, other[:, T], trk) % 360.0
    dlat = m * _knob("replay").per_unit * rng.choice([-1.0, 1.0])
    if abs(out[:, LAT].max() + dlat) > 85.0 or abs(out[:, LAT].min() + dlat) > 85.0:
        dlat = -dlat
    out[:, LAT] += dlat
    out[:, LON] = wrap_deg(out[:, LON] + rng.uniform(-5.0, 5.0))
    out[:, ALT] += rng.uniform(-2000.0, 2000.0)
    return out


def _pull_off(base: np.ndarray, m: float, rng: np.random.Generator) -> np.ndarray:
    out = base.copy()
    t = base[:, T] - base[0, T]
    t_on = _onset(base, rng)
    k_on = int(np.searchsorted(t, t_on))
    direction = base[min(k_on, len(base) - 1), TRK] + rng.choice([-1.0, 1.0]) * rng.uniform(45.0, 135.0)
    tau = np.clip(t - t_on, 0.0, None)
    offset = 0.5 * m * _knob("pull_off").per_unit * tau[:, None] ** 2 * heading_unit(direction)
    _set_path(out, base, path_at_altitude(base) + offset)
    return out


def _velocity_inconsistency(base: np.ndarray, m: float, rng: np.random.Generator) -> np.ndarray:
    out = base.copy()
    after = (base[:, T] - base[0, T]) >= _onset(base, rng)
    sign = rng.choice([-1.0, 1.0])
    field = rng.integers(3)
    if field == 0:
        out[after, GS] = np.maximum(base[after, GS] + sign * m * _knob("velocity_inconsistency", 0).per_unit, 0.0)
    elif field == 1:
        out[after, TRK] = (base[after, TRK] + sign * m * _knob("velocity_inconsistency", 1).per_unit) % 360.0
    else:
        out[after, VR] = base[after, VR] + sign * m * _knob("velocity_inconsistency", 2).per_unit
    return out


def _altitude_ramp(base: np.ndarray, m: float, rng: np.random.Generator) -> np.ndarray:
    out = base.copy()
    tau = np.clip(base[:, T] - base[0, T] - _onset(base, rng), 0.0, None)
    sign = rng.choice([-1.0, 1.0])
    ramp = _knob("altitude_ramp").per_unit
    if base[:, ALT].min() - m * ramp * tau[-1] / 60.0 < 2000.0:
        sign = 1.0
    out[:, ALT] = base[:, ALT] + sign * m * ramp * tau / 60.0
    return out


def _along_path(enu: np.ndarray, s_new: np.ndarray) -> np.ndarray:
    """Points at arc lengths `s_new` (m) along the polyline `enu` [P, 2], extrapolated straight past its ends."""
    seg = np.diff(enu, axis=0)
    s = np.concatenate([[0.0], np.cumsum(np.hypot(seg[:, 0], seg[:, 1]))])
    keep = np.concatenate([[True], np.diff(s) > 1e-6])
    s, pts = s[keep], enu[keep]
    out = np.stack([np.interp(s_new, s, pts[:, 0]), np.interp(s_new, s, pts[:, 1])], axis=-1)
    for mask, (a, b) in ((s_new > s[-1], (-2, -1)), (s_new < 0.0, (0, 1))):
        if mask.any():
            d = pts[b] - pts[a]
            d = d / max(np.hypot(*d), 1e-9)
            end = pts[-1] if b == -1 else pts[0]
            ref = s[-1] if b == -1 else 0.0
            out[mask] = end + (s_new[mask] - ref)[:, None] * d
    return out


def _speed_ramp(base: np.ndarray, m: float, rng: np.random.Generator) -> np.ndarray:
    out = base.copy()
    tau = np.clip(base[:, T] - base[0, T] - _onset(base, rng), 0.0, None)
    accel = m * _knob("speed_ramp").per_unit * rng.choice([-1.0, 1.0])
    if (base[:, GS].min() * KT + accel * tau[-1]) < 100.0 * KT:
        accel = abs(accel)
    path = path_at_altitude(base)
    seg = np.diff(path, axis=0)
    s = np.concatenate([[0.0], np.cumsum(np.hypot(seg[:, 0], seg[:, 1]))])
    _set_path(out, base, _along_path(path, s + 0.5 * accel * tau**2))
    out[:, GS] = base[:, GS] + accel * tau / KT
    return out


def _splice(base: np.ndarray, m: float, rng: np.random.Generator, other: np.ndarray) -> np.ndarray:
    n = len(base)
    k = int(rng.integers(n // 4, 3 * n // 4))
    out = base.copy()
    path_a = path_at_altitude(base)
    path_b = path_at_altitude(other)
    course_a = np.degrees(np.arctan2(*(path_a[k - 1] - path_a[k - 2])))
    course_b = np.degrees(np.arctan2(*(path_b[1] - path_b[0])))
    rot = wrap_deg(course_a - course_b + rng.choice([-1.0, 1.0]) * m * _knob("splice").per_unit)
    step_a = np.hypot(*(path_a[k - 1] - path_a[k - 2]))
    step_b = max(np.hypot(*(path_b[1] - path_b[0])), 1.0)
    scale = step_a / step_b * (1.0 + rng.choice([-1.0, 1.0]) * m * (_knob("splice", 2).per_unit / 100.0))
    r = np.radians(rot)
    # a rotation by `rot` clockwise (track angles grow clockwise) of east/north offsets
    rmat = np.array([[np.cos(r), np.sin(r)], [-np.sin(r), np.cos(r)]])
    rel = (path_b[1:n - k + 1] - path_b[0]) @ rmat.T * scale
    path = path_a.copy()
    path[k:] = path_a[k - 1] + rel
    tail = other[1:n - k + 1]
    jump = _knob("splice", 1).per_unit
    out[k:, ALT] = tail[:, ALT] - other[0, ALT] + base[k - 1, ALT] + rng.choice([-1.0, 1.0]) * m * jump
    out[k:, GS] = tail[:, GS] * scale
    out[k:, TRK] = (tail[:, TRK] + rot) % 360.0
    out[k:, VR] = tail[:, VR]
    if out[:, ALT].min() < 2000.0:
        out[k:, ALT] += 2000.0 - out[:, ALT].min()
    _set_path(out, base, path)
    return out


def make_fake(base: np.ndarray, family: str, magnitude: float, rng: np.random.Generator,
              pick_other: PickOther, *, timing_noise: bool = True) -> np.ndarray:
    """One false window [P, 7] of `family` with knob `magnitude` in [0, 1], derived from real `base`.

    `pick_other()` returns another real window (another aircraft, same split) for the families
    that need one (replay, splice). The result has the base's time stamps and reporting resolution.
    Families derived from real windows inherit their measurement noise; ghosts get their own, with
    report timing noise unless `timing_noise` is False (for data that is jittered afterwards anyway).
    """
    m = float(np.clip(magnitude, 0.0, 1.0))
    if family.startswith("ghost_"):
        fake = _ghost(base, m, rng, family.removeprefix("ghost_"), timing_noise)
    elif family == "replay":
        fake = _replay(base, m, rng, pick_other())
    elif family == "splice":
        fake = _splice(base, m, rng, pick_other())
    else:
        simple = {"pull_off": _pull_off, "velocity_inconsistency": _velocity_inconsistency,
                  "altitude_ramp": _altitude_ramp, "speed_ramp": _speed_ramp}
        if family not in simple:
            raise MemgruError(f"unknown false-track family {family!r}; choose from {', '.join(FAMILIES)}")
        fake = simple[family](base, m, rng)
    return apply_quantization(fake, quantization_of(base))


def make_fakes(real: np.ndarray, sources: np.ndarray, rng: np.random.Generator, *,
               families: tuple[str, ...] = FAMILIES,
               magnitude_range: tuple[float, float] = (0.0, 1.0),
               timing_noise: bool = True) -> tuple[np.ndarray, pd.DataFrame]:
    """One fake per real window [N, P, 7]; families balanced (round robin over a shuffle).

    `sources` [N] are the windows' aircraft ids; the second window of replay/splice comes from a
    different aircraft when the pool has one. Returns the fakes [N, P, 7] and metadata with
    columns `family`, `magnitude`, `source` (aircraft of the base window, or of the replayed one)
    and `source2` (the spliced-in aircraft, else empty), row-aligned with `real`. `timing_noise`
    goes to `make_fake`.
    """
    n = len(real)
    fam = np.asarray(families)[rng.permutation(n) % len(families)]
    mags = rng.uniform(*magnitude_range, size=n)
    fakes = np.empty_like(real)
    src = np.asarray(sources).astype(str)
    src1, src2 = src.copy(), np.full(n, "", dtype=object)
    for i in range(n):
        picked: list[int] = []

        def pick_other(i: int = i, picked: list[int] = picked) -> np.ndarray:
            for _ in range(20):
                j = int(rng.integers(n))
                if src[j] != src[i]:
                    break
            picked.append(j)
            return real[j]

        fakes[i] = make_fake(real[i], str(fam[i]), float(mags[i]), rng, pick_other, timing_noise=timing_noise)
        if fam[i] == "replay":
            src1[i] = src[picked[0]]
        elif fam[i] == "splice":
            src2[i] = src[picked[0]]
    meta = pd.DataFrame({"family": fam, "magnitude": mags, "source": src1, "source2": src2})
    return fakes, meta
