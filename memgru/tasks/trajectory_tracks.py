"""Track geometry for the trajectory task: point arrays, local ENU frames, cleaning, resampling, windows.

A *track* here is a float64 array of points [P, 7] whose columns are `POINT_COLUMNS`:
time (s), latitude, longitude (deg, WGS84), barometric altitude (ft), and the fields an ADS-B
transponder reports itself: groundspeed (kt), track angle (deg, clockwise from true north) and
vertical rate (ft/min). Stacks of windows are [N, P, 7]. Nothing here knows about real or false.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from memgru.errors import MemgruError

POINT_COLUMNS = ("time_s", "latitude", "longitude", "altitude", "groundspeed", "track", "vertical_rate")
"""Columns of a point array, in order; units: s, deg, deg, ft, kt, deg, ft/min."""
T, LAT, LON, ALT, GS, TRK, VR = range(7)

EARTH_RADIUS_M = 6_371_000.0
"""Mean Earth radius (m), for the height correction of motion at altitude."""
WGS84_A = 6_378_137.0
"""WGS84 semi-major axis (m)."""
WGS84_E2 = 6.69437999014e-3
"""WGS84 first eccentricity squared."""
KT = 0.514444
"""Metres per second in one knot."""
FT = 0.3048
"""Metres in one foot."""
FPM = FT / 60.0
"""Metres per second in one foot per minute."""
STALE_START_KT = 60.0
"""Segment's first steps whose position-derived speed misses the reported groundspeed by more than this
(kt), followed by a step that does not, mark stale first positions (`drop_stale_start`)."""


def wrap_deg(angle: np.ndarray | float) -> np.ndarray:
    """Wrap angles (deg) into [-180, 180)."""
    return (np.asarray(angle) + 180.0) % 360.0 - 180.0


def to_enu(points: np.ndarray, origin: np.ndarray | None = None) -> np.ndarray:
    """East/north offsets (m) of each point [..., P, 7] from `origin` ([..., 2] lat/lon, default point 0).

    Uses the local tangent plane at the origin with the WGS84 radii of curvature there
    (`_radii`), accurate to < 0.1 % over the ~100 km that a window spans. These are positions on the ellipsoid;
    `path_at_altitude` gives the path the aircraft flies at its altitude.
    """
    if origin is None:
        origin = points[..., 0, LAT:LON + 1]
    lat0 = origin[..., 0:1]
    lon0 = origin[..., 1:2]
    r_north, r_east = _radii(lat0)
    east = r_east * np.cos(np.radians(lat0)) * np.radians(wrap_deg(points[..., LON] - lon0))
    north = r_north * np.radians(points[..., LAT] - lat0)
    return np.stack([east, north], axis=-1)


def path_at_altitude(points: np.ndarray) -> np.ndarray:
    """East/north path (m) of tracks [..., P, 7] as flown at their altitude, from point 0: [..., P, 2].

    This is the frame in which the reported velocity lives: each step is measured in the local
    east/north frame at its own mid-latitude (WGS84 radii of curvature there) and lengthened by
    (R + h) / R at its mean altitude h, since an aircraft at altitude covers that much more than its
    ground projection (0.17 % at FL350) and its GNSS groundspeed measures the motion at altitude.
    Integrating the reported velocity of a real aircraft therefore reproduces this path. A single flat
    projection cannot: `to_enu` measures east-west distances with the scale of point 0's latitude,
    which at 47 deg is 0.5 % off per 0.3 deg of latitude flown; over a 5-minute cruise window that
    turned real tracks by 0.1-0.2 deg and let them drift 100+ m from their own reported velocity,
    which the consistency features read as evidence of a false track. `points_on_path` is the inverse.
    """
    p = np.asarray(points, dtype=np.float64)
    lat_mid = 0.5 * (p[..., :-1, LAT] + p[..., 1:, LAT])
    alt_mid = 0.5 * (p[..., :-1, ALT] + p[..., 1:, ALT])
    per_deg_north, per_deg_east = _metres_per_degree(lat_mid, alt_mid)
    steps = np.stack([per_deg_east * wrap_deg(np.diff(p[..., LON], axis=-1)),
                      per_deg_north * np.diff(p[..., LAT], axis=-1)], axis=-1)
    start = np.zeros_like(steps[..., :1, :])
    return np.concatenate([start, np.cumsum(steps, axis=-2)], axis=-2)


def points_on_path(path: np.ndarray, origin: np.ndarray, alt_ft: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Latitudes and longitudes (deg) [..., P] of a path [..., P, 2] (m) flown at altitudes `alt_ft` [..., P].

    The inverse of `path_at_altitude`: point 0 sits at `origin` [..., 2] (lat, lon) and each step
    is converted at its own mid-latitude and altitude, so a generator that integrates a velocity
    into a path here produces a track whose reported and position-derived motion agree like a real
    aircraft's.
    """
    steps = np.diff(np.asarray(path, dtype=np.float64), axis=-2)
    alt = np.asarray(alt_ft, dtype=np.float64)
    alt_mid = 0.5 * (alt[..., :-1] + alt[..., 1:])
    lat0, lon0 = origin[..., 0:1], origin[..., 1:2]
    lat = np.broadcast_to(lat0, alt.shape)
    # the scale of each step depends on its mid-latitude, which depends on the steps before it: a fixed
    # point that contracts by ~1e-4 per pass over a window's extent, exact to rounding after four passes
    for _ in range(4):
        per_deg_north, per_deg_east = _metres_per_degree(0.5 * (lat[..., :-1] + lat[..., 1:]), alt_mid)
        lat = np.concatenate([lat0, lat0 + np.cumsum(steps[..., 1] / per_deg_north, axis=-1)], axis=-1)
    lon = np.concatenate([lon0, lon0 + np.cumsum(steps[..., 0] / per_deg_east, axis=-1)], axis=-1)
    return lat, wrap_deg(lon)


def _metres_per_degree(lat_deg: np.ndarray, alt_ft: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Metres flown per degree of latitude and per degree of longitude at latitude `lat_deg` and altitude `alt_ft`."""
    r_north, r_east = _radii(lat_deg)
    k = np.radians(1.0) * (EARTH_RADIUS_M + np.asarray(alt_ft) * FT) / EARTH_RADIUS_M
    return r_north * k, r_east * np.cos(np.radians(lat_deg)) * k


def _radii(lat_deg: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """WGS84 meridional and prime-vertical radii of curvature (m) at latitudes `lat_deg`."""
    s2 = np.sin(np.radians(lat_deg)) ** 2
    w = np.sqrt(1.0 - WGS84_E2 * s2)
    return WGS84_A * (1.0 - WGS84_E2) / w**3, WGS84_A / w


def heading_unit(track_deg: np.ndarray) -> np.ndarray:
    """East/north unit vectors [..., 2] of track angles (deg clockwise from north)."""
    rad = np.radians(track_deg)
    return np.stack([np.sin(rad), np.cos(rad)], axis=-1)


def _despike(t: np.ndarray, v: np.ndarray, threshold: float, half_width_s: float) -> np.ndarray:
    """True where `v` lies within `threshold` of the median of its neighbours within `half_width_s`.

    A glitch (a single wrong altitude or rate, common in raw ADS-B) sits far from the median of
    its neighbours; a genuine climb or acceleration does not, because the median of a ramp is the
    ramp's value at the centre.
    """
    s = pd.Series(v, index=pd.to_datetime(t, unit="s"))
    window = f"{int(2 * half_width_s) + 1}s"
    med = s.rolling(window, center=True, min_periods=1).median().to_numpy()
    return np.abs(v - med) <= threshold


def true_runs(mask: np.ndarray) -> list[tuple[int, int]]:
    """(start, stop) index pairs of the runs of True in a 1-D boolean mask, in order (mask[start:stop] all True)."""
    edges = np.flatnonzero(np.diff(np.concatenate([[0], np.asarray(mask).astype(np.int8), [0]])))
    return list(zip(edges[::2].tolist(), edges[1::2].tolist(), strict=True))


ALTITUDE_GLITCH_FT = 500.0
"""An altitude report further than this (ft) from the median of the surrounding 20 s of reports is a glitch
(`clean_track`). A climb or descent at any rate leaves each report at the median of its neighbours (the median
of a monotonic run is its centre), so only a reversal within seconds could come this far, which no aircraft
flies; decoding errors of exactly 1,000 ft (the `tv_relay/tour_de_france` sample's 27,975 / 26,975 ft
alternation) do. Was 1,000 ft, which let exactly-1,000-ft glitches through."""


def clean_track(frame: pd.DataFrame, *, min_altitude_ft: float) -> pd.DataFrame:
    """Drop unusable samples of one aircraft's raw reports, leaving NaN where a field is unusable.

    `frame` has a float `time_s` column (s) and the other `POINT_COLUMNS` (NaN where a report
    did not carry the field); an optional boolean `onground`. Removed: rows on the ground or
    below `min_altitude_ft` (take-off/landing and taxiing are not what the detector is about),
    duplicated timestamps (first report kept), altitudes/speeds/rates outside physical bounds, and
    isolated glitches (more than `ALTITUDE_GLITCH_FT`, 100 kt or 3,000 ft/min away from the median of the
    surrounding 20 s, or a position more than 2 km off the median of the surrounding 20 s).
    """
    df = frame.sort_values("time_s", kind="stable").drop_duplicates("time_s", keep="first")
    if "onground" in df:
        df = df[~df["onground"].fillna(False).astype(bool)]
    df = df[~(df["altitude"] < min_altitude_ft)].copy()
    bounds = {"altitude": (-1500.0, 60_000.0), "groundspeed": (0.0, 750.0), "vertical_rate": (-12_000.0, 12_000.0)}
    for col, (lo, hi) in bounds.items():
        bad = (df[col] < lo) | (df[col] > hi)
        df.loc[bad, col] = np.nan
    t = df["time_s"].to_numpy(float)
    for col, thr in (("altitude", ALTITUDE_GLITCH_FT), ("groundspeed", 100.0), ("vertical_rate", 3000.0)):
        v = df[col].to_numpy(float)
        ok = np.isnan(v)
        ok[~ok] = _despike(t[~ok], v[~ok], thr, 10.0)
        df.loc[~ok, col] = np.nan
    pos = df[["latitude", "longitude"]].to_numpy(float)
    has = ~np.isnan(pos).any(axis=1)
    if has.sum() >= 3:
        lat_med = pd.Series(pos[has, 0], index=pd.to_datetime(t[has], unit="s"))
        lon_med = pd.Series(pos[has, 1], index=pd.to_datetime(t[has], unit="s"))
        lat_m = lat_med.rolling("21s", center=True, min_periods=1).median().to_numpy()
        lon_m = lon_med.rolling("21s", center=True, min_periods=1).median().to_numpy()
        dn = EARTH_RADIUS_M * np.radians(pos[has, 0] - lat_m)
        de = EARTH_RADIUS_M * np.cos(np.radians(lat_m)) * np.radians(wrap_deg(pos[has, 1] - lon_m))
        far = np.hypot(de, dn) > 2000.0
        idx = np.flatnonzero(has)[far]
        df.iloc[idx, [df.columns.get_loc("latitude"), df.columns.get_loc("longitude")]] = np.nan
    return df


FILLED_STEP_TOL_M = 2.0
"""Position steps that agree to this many metres (east and north) count as the same step (`drop_filled_gaps`)."""


def drop_filled_gaps(frame: pd.DataFrame, *, max_gap_s: float) -> pd.DataFrame:
    """Drop stretches of cleaned reports that are a coverage gap filled upstream, not reports.

    Some published samples fill gaps by interpolation: in the `traffic` wheel's Tour de France relay
    flight the positions advance by the same step every 5 s for 140 s, on a straight line at 70 kt,
    while groundspeed (206 kt), track and vertical rate stay frozen at their last value. Rows whose
    reported groundspeed, track and vertical rate equal the previous row's and whose position step
    equals the previous step within `FILLED_STEP_TOL_M` (m) form such a fill when the run spans more
    than `max_gap_s` seconds; the run is dropped (with the rows at its ends, which lie on the same
    line), so that resampling sees the gap and splits the track there. Rows missing any of these
    fields are left alone. Meant for the published collections that the datasets are built from; a
    synthetic track flown at exactly constant velocity would match, so user files are not filtered.
    """
    cols = ["latitude", "longitude", "groundspeed", "track", "vertical_rate"]
    if not set(cols) <= set(frame.columns):
        return frame
    full = frame[cols].notna().all(axis=1).to_numpy()
    rows = np.flatnonzero(full)
    if len(rows) < 4:
        return frame
    t = frame["time_s"].to_numpy(float)[rows]
    v = frame[cols].to_numpy(float)[rows]
    per_deg_north, per_deg_east = _metres_per_degree(0.5 * (v[1:, 0] + v[:-1, 0]), 0.0)
    step = np.stack([per_deg_east * wrap_deg(np.diff(v[:, 1])), per_deg_north * np.diff(v[:, 0])], axis=-1)
    same_step = np.all(np.abs(np.diff(step, axis=0)) <= FILLED_STEP_TOL_M, axis=-1)  # step k+1 vs step k
    held = np.all(np.diff(v[:, 2:], axis=0) == 0, axis=-1)  # row k+1 repeats row k's velocity
    filled = same_step & held[1:] & held[:-1]  # row k+1 sits on the line of rows k..k+2, velocity frozen
    drop = np.zeros(len(rows), bool)
    for a, b in true_runs(filled):  # filled[a:b] -> rows a .. b + 1 on one line
        if t[b + 1] - t[a] > max_gap_s:
            drop[a:b + 2] = True
    return frame.drop(index=frame.index[rows[drop]]) if drop.any() else frame


def _interp_column(t: np.ndarray, v: np.ndarray, grid: np.ndarray, max_gap_s: float, circular: bool):
    """Linear interpolation of the valid samples of one column onto `grid`, with a validity mask.

    A grid time is valid when valid samples exist within `max_gap_s` of each other on both sides
    of it (or exactly at it). Angles (`circular`) are unwrapped before and wrapped to [0, 360) after.
    """
    ok = ~np.isnan(v)
    tv, vv = t[ok], v[ok]
    if len(tv) == 0:
        return np.full(len(grid), np.nan), np.zeros(len(grid), bool)
    if circular:
        vv = np.degrees(np.unwrap(np.radians(vv)))
    out = np.interp(grid, tv, vv)
    j = np.searchsorted(tv, grid)
    hit = (j < len(tv)) & (tv[np.minimum(j, len(tv) - 1)] == grid)
    prev_t = np.where(j > 0, tv[np.maximum(j - 1, 0)], -np.inf)
    next_t = np.where(j < len(tv), tv[np.minimum(j, len(tv) - 1)], np.inf)
    valid = hit | (next_t - prev_t <= max_gap_s)
    if circular:
        out = out % 360.0
    return out, valid


def resample_track(frame: pd.DataFrame, *, step_s: float, max_gap_s: float,
                   required: tuple[str, ...] = POINT_COLUMNS[1:]) -> list[np.ndarray]:
    """Resample one aircraft's cleaned reports onto a common time grid; return its gap-free segments.

    The grid is every `step_s` seconds on multiples of `step_s` (so 10 s data already on the grid
    is reproduced exactly). Each column is interpolated from its own valid samples (ADS-B sends
    position and velocity in different messages); a grid time counts only if every column in
    `required` has valid samples at most `max_gap_s` apart around it. Returns a list of point
    arrays [P, 7], one per run of consecutive valid grid times, in time order, each without a stale
    first position (`drop_stale_start`).
    """
    t = frame["time_s"].to_numpy(float)
    if len(t) < 2:
        return []
    grid = np.arange(np.ceil(t[0] / step_s) * step_s, t[-1] + 1e-9, step_s)
    if len(grid) == 0:
        return []
    out = np.full((len(grid), len(POINT_COLUMNS)), np.nan)
    out[:, T] = grid
    valid = np.ones(len(grid), bool)
    for i, col in enumerate(POINT_COLUMNS[1:], start=1):
        if col not in frame:
            continue
        out[:, i], ok = _interp_column(t, frame[col].to_numpy(float), grid, max_gap_s, circular=col == "track")
        if col in required:
            valid &= ok
    return [drop_stale_start(out[a:b]) for a, b in true_runs(valid)]


def drop_stale_start(segment: np.ndarray, *, max_error_kt: float = STALE_START_KT, max_points: int = 3) -> np.ndarray:
    """A resampled segment [P, 7] without the stale positions it may start with (at most `max_points`).

    When an aircraft is (re)acquired after a gap, the first surveillance records often carry positions
    that do not belong to their timestamps (held over from before the gap, or late): the first one or two
    steps' position-derived speed then falls far short of (or overshoots) the reported groundspeed while
    every later step agrees. Of the 1,249 segments (of 6 points or more) of the held-out OpenSky state
    vectors 824 start with one such step, 315 with two and 17 with three; none of the 234 segments of
    the 1 s training collection does. The first k points (1 <= k <= `max_points`) are dropped when
    each of the first k steps misses the reported groundspeed by more than `max_error_kt` and step k
    does not, so a track whose reported and derived speeds disagree throughout (a false track with
    inconsistent velocity) keeps its evidence. Segments without reported groundspeed are returned
    unchanged.
    """
    head = segment[:max_points + 2]
    if len(head) < 3 or np.isnan(head[:, GS]).any():
        return segment
    error = np.abs(derived_speed_kt(head) - 0.5 * (head[:-1, GS] + head[1:, GS]))
    agree = np.flatnonzero(error <= max_error_kt)
    return segment[int(agree[0]):] if len(agree) else segment  # agree[0] <= max_points: head has max_points + 1 steps


def derive_reported(points: np.ndarray) -> np.ndarray:
    """Fill groundspeed, track and vertical rate of a track [P, 7] from its positions and altitudes.

    Central differences on the interior, one-sided at the ends; used when a user's file lacks the
    reported fields (then the reported-vs-derived consistency features carry no information).
    """
    p = points.copy()
    enu = path_at_altitude(p)
    t = p[:, T]
    ve = np.gradient(enu[:, 0], t)
    vn = np.gradient(enu[:, 1], t)
    p[:, GS] = np.hypot(ve, vn) / KT
    p[:, TRK] = np.degrees(np.arctan2(ve, vn)) % 360.0
    p[:, VR] = np.gradient(p[:, ALT], t) * 60.0
    return p


def cut_windows(segment: np.ndarray, window_points: int, stride: int) -> np.ndarray:
    """All windows [W, window_points, 7] of a segment [P, 7] that start every `stride` points."""
    n = len(segment)
    if n < window_points:
        return np.empty((0, window_points, segment.shape[1]))
    starts = np.arange(0, n - window_points + 1, stride)
    return np.stack([segment[s:s + window_points] for s in starts])


def quantization_of(window: np.ndarray) -> dict[str, float]:
    """Reporting resolution of each field of a real window: {column: step} (0 = continuous).

    ADS-B altitude comes in 25 ft steps and vertical rate in 64 ft/min steps; some sources round
    groundspeed and track to whole units, others (OpenSky state vectors) do not. Fakes copy the
    resolution of the real window they are derived from, so rounding alone never gives them away.
    """
    steps = {ALT: 25.0, GS: 1.0, TRK: 1.0, VR: 64.0}
    out = {}
    for col, step in steps.items():
        v = window[:, col]
        out[POINT_COLUMNS[col]] = step if np.allclose(v / step, np.round(v / step), atol=1e-6) else 0.0
    return out


def apply_quantization(window: np.ndarray, steps: dict[str, float]) -> np.ndarray:
    """Round the reported fields of `window` [P, 7] to the resolution `steps` from `quantization_of`."""
    out = window.copy()
    for col in (ALT, GS, TRK, VR):
        step = steps.get(POINT_COLUMNS[col], 0.0)
        if step > 0:
            out[:, col] = np.round(out[:, col] / step) * step
    out[:, TRK] %= 360.0
    return out


def derived_speed_kt(points: np.ndarray) -> np.ndarray:
    """Position-derived ground speed (kt, at the aircraft's altitude) of each step of tracks [..., P, 7]: [..., P-1]."""
    step = np.diff(path_at_altitude(points), axis=-2)
    return np.hypot(step[..., 0], step[..., 1]) / np.diff(points[..., T], axis=-1) / KT


def check_window_physics(windows: np.ndarray) -> np.ndarray:
    """True for windows [N, P, 7] whose position-derived motion is physically possible.

    Position-derived speed at most 750 kt and at least 60 kt, climb/descent at most
    12,000 ft/min; anything else is a data glitch that survived cleaning.
    """
    dt = np.diff(windows[..., T], axis=-1)
    if np.any(dt <= 0):
        raise MemgruError("track times must increase strictly")
    speed = derived_speed_kt(windows)
    climb = np.diff(windows[..., ALT], axis=-1) / dt * 60.0
    return (speed.max(-1) <= 750.0) & (speed.min(-1) >= 60.0) & (np.abs(climb).max(-1) <= 12_000.0)


def positions_at(points: np.ndarray, t_query: np.ndarray) -> np.ndarray:
    """Positions on the path flown (m, `path_at_altitude`) of a track [P, 7] at times `t_query` [P] (s).

    Linear in time between points; past either end, straight on with the end step's velocity.
    """
    enu = path_at_altitude(points)
    t = points[:, T]
    out = np.stack([np.interp(t_query, t, enu[:, 0]), np.interp(t_query, t, enu[:, 1])], axis=-1)
    for mask, a, b in ((t_query < t[0], 0, 1), (t_query > t[-1], -2, -1)):
        if mask.any():
            vel = (enu[b] - enu[a]) / (t[b] - t[a])
            ref = a if a == 0 else b
            out[mask] = enu[ref] + (t_query[mask] - t[ref])[:, None] * vel
    return out


def jitter_positions(points: np.ndarray, rng: np.random.Generator, *,
                     sigma_s: tuple[float, float] = (0.1, 0.3), stale_prob: tuple[float, float] = (0.0, 0.1),
                     max_lag_s: float = 4.0, glitch_prob: float = 0.15,
                     glitch_m: tuple[float, float] = (100.0, 1000.0)) -> np.ndarray:
    """Copy of a track [P, 7] whose positions carry the timing noise of real surveillance data.

    Receivers stamp a position with the time of the report that carried it, not of the fix: the
    held-out OpenSky state vectors show step-to-step speed errors of about +-10 kt at half of the
    steps (a timing error of about 0.2 s) and, at a few % of the steps, a stale position up to
    a few seconds old (speed errors of 100+ kt for a step). Each position here is the track's
    position at t + N(0, s²) - stale·U(0, `max_lag_s`), with s ~ U(`sigma_s`) s and stale with a
    probability ~ U(`stale_prob`) per window, which reproduces the held-out data's spread of
    position-derived speed errors. About 11 % of the held-out windows also hold an isolated
    position several hundred metres off the track: with probability `glitch_prob` one or two
    points are moved by U(`glitch_m`) m in a random direction. Reported fields are untouched.
    """
    n = len(points)
    sigma = rng.uniform(*sigma_s)
    p_stale = rng.uniform(*stale_prob)
    lag = rng.standard_normal(n) * sigma - (rng.random(n) < p_stale) * rng.uniform(0.0, max_lag_s, n)
    enu = positions_at(points, points[:, T] + lag)
    if rng.random() < glitch_prob:
        k = rng.choice(n, size=int(rng.integers(1, 3)), replace=False)
        angle = rng.uniform(0.0, 2 * np.pi, len(k))
        enu[k] += rng.uniform(*glitch_m, len(k))[:, None] * np.stack([np.sin(angle), np.cos(angle)], -1)
    out = points.copy()
    out[:, LAT], out[:, LON] = points_on_path(enu, points[0, LAT:LON + 1], points[:, ALT])
    return out
