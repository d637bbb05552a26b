"""Trajectory task: geometry, cleaning, features, false-track families, dataset build, user input."""

from __future__ import annotations

import gzip
import io
import json
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from memgru.errors import MemgruError
from memgru.tasks import trajectory as tr
from memgru.tasks.trajectory_fakes import FAMILIES, FAMILY_DOCS, FAMILY_KNOBS, make_fake, make_fakes
from memgru.tasks.trajectory_tracks import (
    ALT,
    EARTH_RADIUS_M,
    FT,
    GS,
    KT,
    LAT,
    LON,
    TRK,
    VR,
    WGS84_A,
    WGS84_E2,
    T,
    clean_track,
    derived_speed_kt,
    drop_filled_gaps,
    drop_stale_start,
    heading_unit,
    jitter_positions,
    path_at_altitude,
    points_on_path,
    quantization_of,
    resample_track,
    to_enu,
    wrap_deg,
)

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "trajectory"


def synth_track(n: int, dt: float = 10.0, *, t0: float = 1.6e9, lat0: float = 46.5, lon0: float = 8.0,
                heading: float = 30.0, speed_kt: float = 450.0, alt_ft: float = 36000.0,
                turn_deg_s: float = 0.0, vr_fpm: float = 0.0) -> np.ndarray:
    """A kinematically consistent track [n, 7]: positions integrate the reported velocity along the path
    flown at the track's altitude (`points_on_path`)."""
    t = np.arange(n) * dt
    hdg = heading + turn_deg_s * t
    alt = alt_ft + vr_fpm * t / 60.0
    v = heading_unit(hdg) * speed_kt * KT
    path = np.concatenate([[[0.0, 0.0]], np.cumsum(0.5 * (v[1:] + v[:-1]) * dt, axis=0)])
    lat, lon = points_on_path(path, np.array([lat0, lon0]), alt)
    pts = np.zeros((n, 7))
    pts[:, T], pts[:, LAT], pts[:, LON] = t0 + t, lat, lon
    pts[:, ALT] = alt
    pts[:, GS], pts[:, TRK], pts[:, VR] = speed_kt, hdg % 360.0, vr_fpm
    return pts


def to_frame(pts: np.ndarray, icao: str) -> pd.DataFrame:
    df = pd.DataFrame(pts[:, 1:], columns=["latitude", "longitude", "altitude", "groundspeed", "track",
                                           "vertical_rate"])
    df.insert(0, "timestamp", (pts[:, T] * 1000).astype(np.int64))
    df["icao24"], df["callsign"] = icao, f"C{icao}"
    return df


# ------------------------------------------------------------------------------------ geometry


def test_path_round_trip_and_scale():
    pts = synth_track(40, turn_deg_s=0.5, vr_fpm=-2000.0)
    lat, lon = points_on_path(path_at_altitude(pts), pts[0, LAT:LON + 1], pts[:, ALT])
    np.testing.assert_allclose(lat, pts[:, LAT], atol=1e-9)
    np.testing.assert_allclose(lon, pts[:, LON], atol=1e-9)
    # one minute of latitude is about one nautical mile (1,852 m), at sea level and on the tangent plane
    minute = np.array([[0, 46.0, 8.0, 0, 0, 0, 0], [0, 46.0 + 1 / 60, 8.0, 0, 0, 0, 0]])
    assert abs(to_enu(minute)[1, 1] - 1852) < 5 and abs(path_at_altitude(minute)[1, 1] - 1852) < 5
    # across the antimeridian a step stays a step
    across = synth_track(3, lat0=10.0, lon0=179.99, heading=90.0)
    assert across[-1, LON] < -179.95 and np.allclose(np.diff(path_at_altitude(across)[:, 0]), 450 * KT * 10, rtol=1e-3)


def test_clean_track_drops_ground_duplicates_and_spikes():
    pts = synth_track(120, dt=1.0, speed_kt=250, alt_ft=8000)
    df = pd.DataFrame(pts, columns=["time_s", *tr.POINT_COLUMNS[1:]])
    df["onground"] = False
    df.loc[5, "onground"] = True
    df.loc[50, "altitude"] = 30000.0  # a single-report glitch
    df.loc[70, "latitude"] += 0.05  # a position 5 km off
    df = pd.concat([df, df.iloc[[10]]]).reset_index(drop=True)  # a duplicated time
    out = clean_track(df, min_altitude_ft=2000)
    assert out["time_s"].is_unique and len(out) == 119
    assert np.isnan(out.loc[out["time_s"] == pts[50, T], "altitude"]).all()
    assert np.isnan(out.loc[out["time_s"] == pts[70, T], "latitude"]).all()
    assert out["altitude"].notna().sum() == 118


def test_clean_track_drops_exact_1000_ft_decoding_glitches_but_keeps_the_steepest_climbs():
    """Altitude decoding errors of exactly 1,000 ft (alternating 27,975 / 26,975 ft in a real relay flight)
    are glitches; a 6,000 ft/min climb and its level-off are not, at 1-s and at 10-s reports."""
    pts = synth_track(120, dt=1.0, speed_kt=250, alt_ft=27975)
    df = pd.DataFrame(pts, columns=["time_s", *tr.POINT_COLUMNS[1:]])
    df.loc[[30, 31, 60, 90], "altitude"] -= 1000.0
    out = clean_track(df, min_altitude_ft=2000)
    assert set(np.flatnonzero(out["altitude"].isna().to_numpy())) == {30, 31, 60, 90}
    for dt in (1.0, 10.0):
        climb = synth_track(60, dt=dt, speed_kt=250, alt_ft=10000, vr_fpm=6000)
        climb[30:, ALT] = climb[29, ALT]  # levels off abruptly
        kept = clean_track(pd.DataFrame(climb, columns=["time_s", *tr.POINT_COLUMNS[1:]]), min_altitude_ft=2000)
        assert kept["altitude"].notna().all(), dt


def test_resample_interleaved_reports_and_gaps():
    pts = synth_track(300, dt=1.0, t0=1000.0, speed_kt=300, alt_ft=10000)
    df = pd.DataFrame(pts, columns=["time_s", *tr.POINT_COLUMNS[1:]])
    df.loc[df.index % 2 == 0, "altitude"] = np.nan  # position and velocity in separate messages
    df = df.drop(index=range(150, 180))  # a 31 s hole splits the track
    segs = resample_track(df, step_s=10, max_gap_s=20)
    assert len(segs) == 2
    assert np.all(np.diff(segs[0][:, T]) == 10) and segs[0][0, T] % 10 == 0
    assert segs[0][-1, T] < pts[150, T] < pts[179, T] < segs[1][0, T]
    # 10 s data already on the grid comes back unchanged
    grid = synth_track(40, dt=10.0, t0=2000.0)
    again = resample_track(pd.DataFrame(grid, columns=["time_s", *tr.POINT_COLUMNS[1:]]), step_s=10, max_gap_s=20)
    np.testing.assert_allclose(again[0], grid)


def test_filled_coverage_gaps_of_published_samples_are_dropped():
    """A stretch where positions advance by identical steps while the reported velocity stays frozen is
    a gap filled by interpolation upstream (seen in the wheel's Tour de France flight): dropped when it
    lasts longer than the resampler's gap limit, so the track splits there; real reports stay."""
    pts = synth_track(120, dt=5.0, t0=3000.0, turn_deg_s=0.3)
    rng = np.random.default_rng(0)
    pts[:, LAT] += rng.normal(0.0, 3e-5, len(pts))  # ~3 m of position noise, as in real reports
    pts[:, GS] += np.round(rng.normal(0.0, 1.0, len(pts)))
    filled = pts.copy()
    a, b = 40, 70  # 150 s filled on a straight line at the wrong speed, velocity frozen at row a
    frac = np.linspace(0.0, 1.0, b - a + 1)[:, None]
    filled[a:b + 1, LAT:LON + 1] = pts[a, LAT:LON + 1] + frac * (pts[b, LAT:LON + 1] - pts[a, LAT:LON + 1]) * 0.4
    filled[a:b + 1, GS:] = pts[a, GS:]
    frame = pd.DataFrame(filled, columns=["time_s", *tr.POINT_COLUMNS[1:]])
    kept = drop_filled_gaps(frame, max_gap_s=20.0)
    assert set(frame.index) - set(kept.index) == set(range(a, b + 1))
    segs = resample_track(kept, step_s=10, max_gap_s=20)
    assert len(segs) == 2 and segs[0][-1, T] < filled[a, T] and segs[1][0, T] > filled[b, T]
    real = pd.DataFrame(pts, columns=["time_s", *tr.POINT_COLUMNS[1:]])
    assert len(drop_filled_gaps(real, max_gap_s=20.0)) == len(real)
    short = pts.copy()
    short[a:a + 4, LAT:LON + 1] = pts[a, LAT:LON + 1] + np.arange(4)[:, None] * 1e-4
    short[a:a + 4, GS:] = pts[a, GS:]  # a 15-s freeze: within the gap limit, kept
    frame = pd.DataFrame(short, columns=["time_s", *tr.POINT_COLUMNS[1:]])
    assert len(drop_filled_gaps(frame, max_gap_s=20.0)) == len(frame)


def _stale_first(pts: np.ndarray, lag_s: float, n: int = 1) -> np.ndarray:
    """Copy of a track whose first `n` positions lag their timestamps by (n - i) * `lag_s` seconds (point i)."""
    out = pts.copy()
    for i in range(n):
        lag = lag_s * (n - i)
        back = synth_track(2, dt=lag, t0=pts[i, T] - lag, lat0=0.0, lon0=0.0)
        east_north = path_at_altitude(back)[1]  # how far the aircraft moves in that time
        lat, lon = points_on_path(np.stack([np.zeros(2), -east_north]), pts[i, LAT:LON + 1], pts[i:i + 2, ALT])
        out[i, LAT], out[i, LON] = lat[1], lon[1]
    return out


def test_stale_first_position_of_a_segment_is_dropped():
    """The first state vector after (re)acquisition carries an old position: dropped in resampling,
    while an inconsistency that goes on (a false track's evidence) and a clean start are kept."""
    grid = synth_track(40, dt=10.0, t0=2000.0)
    stale = _stale_first(grid, 7.0)
    np.testing.assert_allclose(drop_stale_start(stale), grid[1:])
    frame = pd.DataFrame(stale, columns=["time_s", *tr.POINT_COLUMNS[1:]])
    np.testing.assert_allclose(resample_track(frame, step_s=10, max_gap_s=20)[0], grid[1:])
    np.testing.assert_allclose(drop_stale_start(grid), grid)  # clean start kept
    slightly = _stale_first(grid, 1.0)  # 1 s old: within the tolerance, kept
    np.testing.assert_allclose(drop_stale_start(slightly), slightly)
    inconsistent = grid.copy()
    inconsistent[:, GS] *= 0.7  # reported speed 135 kt short of the motion at every step
    np.testing.assert_allclose(drop_stale_start(inconsistent), inconsistent)
    no_reports = stale.copy()
    no_reports[:, GS] = np.nan  # a user file without groundspeed: nothing to compare with
    np.testing.assert_allclose(drop_stale_start(no_reports), no_reports)


@pytest.mark.parametrize("n", [2, 3])
def test_stale_start_over_several_points_is_dropped_up_to_the_limit(n):
    """Over a third of the held-out segments start with two or three stale positions (the first steps all
    disagree with the reported speed, then it agrees): all of them go; more than `max_points` such
    points is no longer a stale start but a track whose velocity does not fit, and is kept."""
    grid = synth_track(40, dt=10.0, t0=2000.0)
    stale = _stale_first(grid, 7.0, n)
    np.testing.assert_allclose(drop_stale_start(stale), grid[n:])
    np.testing.assert_allclose(drop_stale_start(stale, max_points=n - 1), stale)


# ------------------------------------------------------------------------------------ features


def _constant_track_flight(n: int, *, lat0: float, heading: float, alt_ft: float, speed_kt: float = 450.0,
                           dt: float = 10.0, substeps: int = 50) -> np.ndarray:
    """Reference track [n, 7] of a flight at constant true track, groundspeed and altitude, integrated
    independently of the code under test: dlat/dt = v cos(track) / M, dlon/dt = v sin(track) / (N cos(lat)),
    M and N the WGS84 radii of curvature stretched by (R + h) / R, midpoint rule at dt / substeps."""
    k = (EARTH_RADIUS_M + alt_ft * FT) / EARTH_RADIUS_M
    v, th = speed_kt * KT, np.radians(heading)

    def rates(phi: float) -> tuple[float, float]:
        w = np.sqrt(1.0 - WGS84_E2 * np.sin(phi) ** 2)
        return (v * np.cos(th) / (WGS84_A * (1.0 - WGS84_E2) / w**3 * k),
                v * np.sin(th) / (WGS84_A / w * np.cos(phi) * k))

    lat, lon, h = np.radians(lat0), np.radians(8.0), dt / substeps
    pts = np.zeros((n, 7))
    for i in range(n):
        pts[i, :4] = 1.6e9 + i * dt, np.degrees(lat), np.degrees(lon), alt_ft
        for _ in range(substeps):
            mid = rates(lat + 0.5 * h * rates(lat)[0])
            lat, lon = lat + h * mid[0], lon + h * mid[1]
    pts[:, GS], pts[:, TRK] = speed_kt, heading
    return pts


@pytest.mark.parametrize("lat0, heading, alt_ft", [(47.0, 45.0, 36000.0), (60.0, 330.0, 36000.0),
                                                   (-35.0, 120.0, 4000.0), (47.0, 90.0, 0.0)])
def test_position_derived_motion_of_a_real_flight_matches_its_reported_motion(lat0, heading, alt_ft):
    """A flight at constant track and speed must look consistent at any latitude, heading and altitude:
    the consistency features are the evidence against false tracks, so any geometric bias in them turns
    real cruise traffic into false alarms. A single flat projection (`to_enu`) misses the reported
    groundspeed by up to 1-2 kt and the course by 0.1-0.5 deg over one 5-minute window at 450 kt, and at
    FL360 the ground projection alone is 0.8 kt short."""
    flight = _constant_track_flight(tr.WINDOW_POINTS, lat0=lat0, heading=heading, alt_ft=alt_ft)
    np.testing.assert_allclose(derived_speed_kt(flight), 450.0, atol=0.01)
    raw = tr.featurize_raw(flight)[0]
    names = list(tr.FEATURE_NAMES)
    for name, tol in (("groundspeed_residual_kt", 0.01), ("track_residual_deg", 0.005),
                      ("drift_along_m", 2.0), ("drift_cross_m", 2.0), ("turn_rate_derived_deg_s", 1e-3)):
        assert np.abs(raw[:, names.index(name)]).max() < tol, name
    path = path_at_altitude(flight[None])[0]
    assert path.shape == (tr.WINDOW_POINTS, 2) and np.all(path[0] == 0.0)
    if heading != 90.0 or alt_ft > 0:  # what the flat projection makes of the same flight
        flat = np.diff(to_enu(flight), axis=0)
        flat_speed = np.hypot(flat[:, 0], flat[:, 1]) / 10.0 / KT
        flat_course = np.degrees(np.arctan2(flat[:, 0], flat[:, 1]))
        assert max(np.abs(flat_speed - 450.0).max() / 0.3, np.abs(wrap_deg(flat_course - heading)).max() / 0.05) > 1


def test_features_of_consistent_tracks():
    straight = tr.featurize_raw(synth_track(tr.WINDOW_POINTS))[0]
    names = list(tr.FEATURE_NAMES)
    for name in ("speed_change_derived_kt", "groundspeed_residual_kt", "track_residual_deg",
                 "vertical_rate_residual_ft_min", "turn_rate_derived_deg_s", "drift_cross_m"):
        assert np.abs(straight[:, names.index(name)]).max() < 1.0, name
    turn = tr.featurize_raw(synth_track(tr.WINDOW_POINTS, turn_deg_s=1.0, speed_kt=400))[0]
    np.testing.assert_allclose(turn[1:, names.index("turn_rate_reported_deg_s")], 1.0, atol=1e-6)
    np.testing.assert_allclose(turn[1:, names.index("turn_rate_derived_deg_s")], 1.0, atol=0.02)
    expected_g = 400 * KT * np.radians(1.0) / 9.80665
    np.testing.assert_allclose(turn[1:, names.index("lateral_accel_g")], expected_g, rtol=0.02)


def test_features_invariant_to_position_and_heading():
    a = synth_track(tr.WINDOW_POINTS, heading=10.0, turn_deg_s=0.5, vr_fpm=1000)
    b = synth_track(tr.WINDOW_POINTS, heading=250.0, turn_deg_s=0.5, vr_fpm=1000, lat0=-20.0, lon0=179.9,
                    alt_ft=20000)
    np.testing.assert_allclose(tr.featurize_raw(a), tr.featurize_raw(b), atol=0.05)


def test_feature_stats_standardise_and_reject_foreign_stats():
    raw = tr.featurize_raw(np.stack([synth_track(tr.WINDOW_POINTS, turn_deg_s=r) for r in (0.0, 0.5, 1.0)]))
    stats = tr.feature_stats(raw)
    x = tr.featurize(np.stack([synth_track(tr.WINDOW_POINTS, turn_deg_s=r) for r in (0.0, 0.5, 1.0)]), stats)
    assert x.dtype == np.float32 and x.shape == (3, tr.WINDOW_STEPS, len(tr.FEATURE_NAMES))
    np.testing.assert_allclose(x.reshape(-1, x.shape[-1]).mean(0), 0.0, atol=1e-5)
    with pytest.raises(MemgruError, match="feature statistics"):
        tr.featurize(synth_track(tr.WINDOW_POINTS), stats | {"feature_names": ["x"]})


# ------------------------------------------------------------------------------------ fakes


def base_window(**kw) -> np.ndarray:
    w = synth_track(tr.WINDOW_POINTS, **kw)
    w[:, ALT] = np.round(w[:, ALT] / 25) * 25
    w[:, VR] = np.round(w[:, VR] / 64) * 64
    return w


def residual(fake: np.ndarray, name: str) -> np.ndarray:
    return tr.featurize_raw(fake)[0][:, list(tr.FEATURE_NAMES).index(name)]


@pytest.mark.parametrize("family", FAMILIES)
def test_each_family_keeps_times_resolution_and_grows_with_magnitude(family):
    base = base_window()
    other = base_window(heading=200.0, speed_kt=430.0, lat0=47.0)
    dev = []
    for m in (0.1, 1.0):
        fake = make_fake(base, family, m, np.random.default_rng(3), lambda: other, timing_noise=False)
        np.testing.assert_array_equal(fake[:, T], base[:, T])
        assert quantization_of(fake)["altitude"] == 25.0 and quantization_of(fake)["vertical_rate"] == 64.0
        assert np.isfinite(fake).all()
        dev.append(np.abs(tr.featurize_raw(fake) - tr.featurize_raw(base)).max())
    if not family.startswith("ghost_") and family not in ("replay", "splice"):
        assert dev[1] > dev[0] > 0


def test_families_create_their_documented_anomaly():
    base = base_window()
    rng = np.random.default_rng(0)

    def fake(family, m=1.0):
        return make_fake(base, family, m, rng, lambda: base_window(heading=300.0), timing_noise=False)

    assert np.abs(residual(fake("altitude_ramp"), "vertical_rate_residual_ft_min")).max() > 1500
    assert np.abs(residual(fake("pull_off"), "drift_cross_m") + residual(fake("pull_off"), "drift_along_m")).max() > 500
    sr = fake("speed_ramp")
    assert np.abs(residual(sr, "groundspeed_residual_kt")).max() < 10  # consistent...
    assert np.abs(residual(sr, "speed_change_derived_kt")).max() > 80  # ...but a 1 m/s² ramp
    turn = fake("ghost_turn")
    assert np.abs(residual(turn, "lateral_accel_g")).max() > 1.2  # 60 deg of bank
    climb = fake("ghost_climb")
    assert np.abs(residual(climb, "climb_rate_derived_ft_min")).max() > 5000
    vi = fake("velocity_inconsistency")
    res = [np.abs(residual(vi, n)).max() for n in ("groundspeed_residual_kt", "track_residual_deg",
                                                    "vertical_rate_residual_ft_min")]
    assert res[0] > 30 or res[1] > 15 or res[2] > 1500
    # a naive latitude shift stretches east-west motion: an eastbound replay no longer matches its speed
    east = base_window(heading=90.0)
    rp = make_fake(east, "replay", 1.0, rng, lambda: east, timing_noise=False)
    assert abs(np.median(residual(rp, "groundspeed_residual_kt"))) > 20


def test_family_knobs_say_what_the_generator_does():
    """`FAMILY_KNOBS` (what the detection experiment and the card report a magnitude as) must be the
    physical size of the anomaly the generator writes, read back from the fake's reported fields."""
    base, m = base_window(), 0.5
    knobs = {f: [k.value(m) for k in FAMILY_KNOBS[f]] for f in FAMILY_KNOBS}
    assert set(FAMILY_KNOBS) == set(FAMILIES)
    for family, family_knobs in FAMILY_KNOBS.items():  # the prose says the same numbers
        assert all(f"m x {k.per_unit:,g}" in FAMILY_DOCS[family] for k in family_knobs), family
    seen = set()
    for seed in range(20):  # velocity_inconsistency biases one field per fake, at the knob's size
        vi = make_fake(base, "velocity_inconsistency", m, np.random.default_rng(seed), lambda: base,
                       timing_noise=False)
        bias = [np.abs(vi[:, GS] - base[:, GS]).max(), np.abs(wrap_deg(vi[:, TRK] - base[:, TRK])).max(),
                np.abs(vi[:, VR] - base[:, VR]).max()]
        changed = [i for i, b in enumerate(bias) if b > 1e-6]
        assert len(changed) == 1
        seen.add(changed[0])
        assert bias[changed[0]] == pytest.approx(knobs["velocity_inconsistency"][changed[0]], abs=32.0 if
                                                 changed[0] == 2 else 1e-6)  # vertical rate: 64 ft/min steps
    assert seen == {0, 1, 2}
    rng = np.random.default_rng(0)
    t = base[:, T] - base[0, T]
    ramp = make_fake(base, "altitude_ramp", m, rng, lambda: base, timing_noise=False)
    moved = np.abs(ramp[:, ALT] - base[:, ALT]) > 30
    slope = np.polyfit(t[moved], np.abs(ramp[moved, ALT] - base[moved, ALT]), 1)[0] * 60.0  # ft/min
    assert slope == pytest.approx(knobs["altitude_ramp"][0], rel=0.03)
    speed = make_fake(base, "speed_ramp", m, rng, lambda: base, timing_noise=False)
    faster = np.abs(speed[:, GS] - base[:, GS]) > 1.0  # groundspeed in whole knots, as the base reports it
    accel = np.polyfit(t[faster], np.abs(speed[faster, GS] - base[faster, GS]), 1)[0] * KT  # m/s²
    assert accel == pytest.approx(knobs["speed_ramp"][0], rel=0.02)
    climb = make_fake(base, "ghost_climb", m, rng, lambda: base, timing_noise=False)
    assert np.abs(climb[:, VR]).max() == pytest.approx(knobs["ghost_climb"][0], abs=32.0)


def test_fakes_of_magnitude_zero_are_as_consistent_as_real_flights():
    """At m = 0 a fake must carry no geometric evidence: the families that move a real track's positions
    write them back through the same path frame the features measure in (exactly consistent), and a
    straight ghost drifts from its own reported velocity only by its 1.5 m position noise. A generator
    working in another frame than the features would hand the model a cue that real data lacks."""
    base = base_window(heading=45.0)
    names = ("groundspeed_residual_kt", "track_residual_deg", "drift_cross_m", "drift_along_m")
    for family in ("pull_off", "speed_ramp", "splice"):
        fake = make_fake(base, family, 0.0, np.random.default_rng(0), lambda: base_window(heading=200.0, lat0=48.5),
                         timing_noise=False)
        assert max(np.abs(residual(fake, n)).max() for n in names) < 1e-6, family
    for family in ("ghost_cv", "ghost_climb"):
        for seed in range(3):
            fake = make_fake(base, family, 0.0, np.random.default_rng(seed), lambda: base, timing_noise=False)
            assert np.abs(residual(fake, "groundspeed_residual_kt")).max() < 3.0
            assert np.abs(residual(fake, "track_residual_deg")).max() < 0.5
            assert max(np.abs(residual(fake, n)).max() for n in names[2:]) < 15.0, family


def test_make_fakes_balanced_and_from_other_aircraft():
    real = np.stack([base_window(heading=h) for h in range(0, 360, 10)])
    sources = np.array([f"a{i % 6}" for i in range(len(real))])
    _, meta = make_fakes(real, sources, np.random.default_rng(1), magnitude_range=(0.2, 0.9))
    counts = meta["family"].value_counts()
    assert set(counts.index) == set(FAMILIES) and counts.max() - counts.min() <= 1
    assert meta["magnitude"].between(0.2, 0.9).all()
    sp = meta["family"] == "splice"
    assert (meta.loc[sp, "source2"] != pd.Series(sources)[sp]).all()
    rp = (meta["family"] == "replay").to_numpy()
    assert (meta.loc[rp, "source"].to_numpy() != sources[rp]).all()


def test_jitter_is_along_track_timing_noise():
    w = base_window()
    j = jitter_positions(w, np.random.default_rng(0), glitch_prob=0.0, stale_prob=(0.0, 0.0))
    assert not np.allclose(j[:, LAT], w[:, LAT])
    assert np.abs(residual(j, "track_residual_deg")).max() < 0.05
    assert 0.5 < np.abs(residual(j, "groundspeed_residual_kt")).max() < 60


# ------------------------------------------------------------------------------------ dataset


def incident_frame(hold_s: float = 500.0) -> pd.DataFrame:
    """A flight like the wheel's GNSS-interference sample, 2 s reports: 800 s reported, `hold_s` of the last
    report held, 800 s at 50 kt at FL360 (interfered), 800 s reported again."""
    a = synth_track(400, 2.0, t0=1.7e9)
    n_held = int(hold_s / 2.0)
    held = np.repeat(a[-1:], n_held, axis=0)
    held[:, T] = a[-1, T] + 2.0 * np.arange(1, n_held + 1)
    b = synth_track(400, 2.0, t0=a[-1, T] + hold_s + 2.0, speed_kt=50.0, heading=270.0, lat0=49.7, lon0=24.0)
    c = synth_track(400, 2.0, t0=b[-1, T] + 2.0, lat0=54.0, lon0=18.4)
    return to_frame(np.concatenate([a, held, b, c]), "4baac6")


def test_incident_stretches_are_labelled_by_physics_rules():
    """Held values count only when they last longer than a resampling gap; a slow flight counts as interfered
    only above FL200 (a slow aircraft low down may be real)."""
    df = incident_frame().assign(time_s=lambda d: d["timestamp"] / 1000.0)
    kinds = tr.label_incident(df)
    assert list(pd.Series(kinds).value_counts().sort_index().items()) == [
        ("held", 250), ("interfered", 400), ("reported", 800)]
    assert kinds[399] == "reported" and kinds[400] == "held" and kinds[650] == "interfered"
    short = incident_frame(hold_s=10.0).assign(time_s=lambda d: d["timestamp"] / 1000.0)
    assert "held" not in set(tr.label_incident(short))
    low = df.assign(altitude=np.where(kinds == "interfered", 5000.0, df["altitude"]))
    assert "interfered" not in set(tr.label_incident(low))


@pytest.fixture(scope="module")
def built(tmp_path_factory) -> tuple[Path, dict]:
    root = tmp_path_factory.mktemp("traj")
    wheel = root / "fake_traffic.whl"
    rng = np.random.default_rng(0)

    def collection(n_ac, n, dt, prefix):
        frames = []
        for i in range(n_ac):
            pts = synth_track(n, dt, t0=1.6e9 + i * 7, heading=rng.uniform(0, 360), speed_kt=rng.uniform(250, 480),
                              alt_ft=rng.uniform(8000, 38000), turn_deg_s=rng.choice([0.0, 0.3]),
                              lat0=rng.uniform(44, 49), lon0=rng.uniform(0, 10))
            frames.append(to_frame(pts, f"{prefix}{i:04d}"))
        return pd.concat(frames).to_json(orient="records").encode()

    with zipfile.ZipFile(wheel, "w") as z:
        for name, blob in (("collections/quickstart", collection(10, 700, 1.0, "q")),
                           ("collections/savan", collection(1, 900, 1.0, "s")),
                           ("collections/switzerland", collection(6, 70, 10.0, "w")),
                           ("surveys/grid", collection(1, 80, 10.0, "u")),
                           ("surveys/grid2", collection(1, 80, 10.0, "v")),
                           (tr.INCIDENT_FLIGHT, incident_frame().to_json(orient="records").encode()),
                           (tr.INCIDENT_FLIGHTS[1], collection(1, 400, 2.0, "t"))):
            z.writestr(f"{tr.SAMPLES}{name}.json.gz", gzip.compress(blob))
    out = root / "data"
    summary = tr.build_dataset(out, seed=0, wheel=wheel, val_fraction=0.3)
    return out, summary


def test_build_dataset_splits(built):
    out, summary = built
    json.dumps(summary)
    for split in ("train", "val", "test"):
        s = tr.load_split(out, split)
        assert s.x.shape[1:] == (tr.WINDOW_STEPS, len(tr.FEATURE_NAMES)) and s.x.dtype == np.float32
        assert (s.y == 0).sum() == (s.y == 1).sum() > 0
        assert set(s.meta.loc[s.y == 0, "family"]) == {"real"}
        assert summary["splits"][split]["n"] == len(s)
        assert len(tr.load_points(out, split)) == len(s)
    train, val, test = (tr.load_split(out, n).meta for n in ("train", "val", "test"))
    assert set(train["source"]).isdisjoint(val["source"])
    test_ids = set(test.loc[test["label"] == 0, "source"])
    assert test_ids <= {f"w{i:04d}" for i in range(6)}
    assert set(test["source"]) | set(test["source2"].dropna()) - {""} <= test_ids
    assert "s0000" in set(train["source"])  # the extra collection joins train only
    stats = tr.load_feature_stats(out)
    raw = tr.featurize_raw(tr.load_points(out, "train"))
    np.testing.assert_allclose(stats["mean"], raw.reshape(-1, raw.shape[-1]).mean(0), rtol=1e-6, atol=1e-6)
    unusual = tr.load_split(out, "unusual")
    assert len(unusual) > 0 and (unusual.y == 0).all() and set(unusual.meta["category"]) == {"surveys"}
    assert set(unusual.meta["flight"]) == {"surveys/grid"} and "v0000" in set(train["source"])  # grid2 trains
    assert summary["parameters"]["unusual_in_train"] == ["surveys/grid2"]
    incident = tr.load_split(out, "incident")  # each stretch read like a user's file, windows not overlapping
    troubled = incident.meta[incident.meta["flight"] == tr.INCIDENT_FLIGHT]
    counts = troubled.groupby(["stretch", "kind"]).size()
    assert list(counts.index.get_level_values("kind")) == ["reported", "held", "interfered", "reported"]
    assert list(counts) == [2, 1, 2, 2] and summary["splits"]["incident"]["n"] == len(incident) == 9
    assert list(incident.meta.loc[incident.meta["flight"] == tr.INCIDENT_FLIGHTS[1], "kind"]) == ["reported"] * 2
    assert (incident.y == (incident.meta["kind"] != "reported")).all()


def test_real_tracks_are_rebuilt_from_their_windows_and_get_whole_false_tracks():
    """Non-overlapping windows of one segment join at their shared point into the segment; a dropped window
    (a hole) or another segment ends a track. Each track gets one false track of its own length and times;
    replay/splice only where another aircraft has a track at least as long (not for the longest)."""
    seg = synth_track(3 * tr.WINDOW_STEPS + 1, turn_deg_s=0.2)
    windows = tr.cut_windows(seg, tr.WINDOW_POINTS, tr.WINDOW_STEPS)
    other = tr.cut_windows(synth_track(tr.WINDOW_POINTS, lat0=40.0), tr.WINDOW_POINTS, tr.WINDOW_STEPS)
    points = np.concatenate([windows[[2, 0, 1]], other, windows[[0]], windows[[2]]])
    step = tr.WINDOW_STEPS * tr.STEP_S
    meta = pd.DataFrame({"source": ["a"] * 3 + ["b"] + ["c"] * 2, "segment": 0,
                         "start_time_s": [seg[0, T] + 2 * step, seg[0, T], seg[0, T] + step, other[0, 0, T],
                                          seg[0, T], seg[0, T] + 2 * step]})
    pieces, info = tr.track_pieces(points, meta)
    assert list(info["source"]) == ["a", "b", "c", "c"] and list(info["n_windows"]) == [3, 1, 1, 1]
    np.testing.assert_array_equal(pieces[0], seg)  # the whole segment back, in time order
    fakes, fake_meta = tr.make_fake_tracks(pieces, info["source"].to_numpy(), np.random.default_rng(0),
                                           families=("replay", "splice"))
    assert [len(f) for f in fakes] == [len(p) for p in pieces]
    assert all(np.array_equal(f[:, T], p[:, T]) for f, p in zip(fakes, pieces, strict=True))
    assert fake_meta.loc[0, "family"] not in tr.PAIRED_FAMILIES  # "a" is the longest: no partner to borrow
    assert set(fake_meta.loc[1:, "family"]) <= set(tr.PAIRED_FAMILIES)
    x, owner = tr.track_windows(fakes, tr.feature_stats(tr.featurize_raw(windows)))
    assert list(owner) == [0, 0, 0, 1, 2, 3] and x.shape == (6, tr.WINDOW_STEPS, len(tr.FEATURE_NAMES))
    again, _ = tr.make_fake_tracks(pieces, info["source"].to_numpy(), np.random.default_rng(0),
                                   families=("replay", "splice"))
    assert all(np.array_equal(a, b) for a, b in zip(fakes, again, strict=True))


def test_tracks_experiment_judges_whole_real_and_false_tracks(built, tmp_path):
    """`experiment --name tracks` on the built data with a tiny model trained for one epoch: one real track per
    test aircraft segment, as many false ones; four models x five thresholds."""
    from memgru.config import ExperimentConfig, ModelConfig, TrainConfig
    from memgru.experiments import run_experiment
    from memgru.pipeline import train_task

    out, _ = built
    exp = ExperimentConfig(task="trajectory", model=ModelConfig(n_features=len(tr.FEATURE_NAMES), n_outputs=2,
                                                                hidden=8, layers=1, dropout=0.0),
                           train=TrainConfig(epochs=1, batch_size=64, lr=1e-2, seed=0))
    train_task("trajectory", exp, tmp_path / "task", out)
    every = run_experiment("trajectory", "tracks", tmp_path / "task", out)
    rows = every[every["family"] == "all"]
    per_family = every[every["family"] != "all"]  # per model and threshold, the false tracks of each family
    assert per_family.groupby(["training", "weight_bits", "target_val_fa_pct"])["n_false_tracks"].sum().eq(
        rows["n_false_tracks"].iloc[0]).all()
    test = tr.load_split(out, "test")
    real = test.meta[test.y == 0]
    n_tracks = real.groupby(["source", "segment"]).ngroups  # no window dropped here: one track per segment
    assert len(rows) == 4 * 5 and set(rows["n_real_tracks"]) == set(rows["n_false_tracks"]) == {n_tracks}
    assert n_tracks >= 3 and len(real) > n_tracks  # tracks of several windows
    for col in ("track_fa_pct", "tracks_caught_pct", "track_accuracy", "track_auc_pct", "track_auc_max_pct"):
        assert rows[col].between(0, 100).all(), col
    assert set(rows["target_val_fa_pct"]) == {"argmax", "0.5", "1", "2", "5"}


def test_build_dataset_is_deterministic(built, tmp_path):
    out, _ = built
    wheel = out.parent / "fake_traffic.whl"
    tr.build_dataset(tmp_path, seed=0, wheel=wheel, val_fraction=0.3, include_unusual=False)
    np.testing.assert_array_equal(tr.load_split(tmp_path, "test").x, tr.load_split(out, "test").x)


def test_training_magnitudes_can_leave_out_near_copies_without_changing_val_or_test(built, tmp_path):
    out, _ = built
    wheel = out.parent / "fake_traffic.whl"
    summary = tr.build_dataset(tmp_path, seed=0, wheel=wheel, val_fraction=0.3, include_unusual=False,
                               train_magnitude_range=(0.4, 1.0))
    assert summary["parameters"]["train_magnitude_range"] == [0.4, 1.0]
    mags = tr.load_split(tmp_path, "train").meta.query("label == 1")["magnitude"]
    assert mags.between(0.4, 1.0).all()
    for split in ("val", "test"):
        np.testing.assert_array_equal(tr.load_points(tmp_path, split), tr.load_points(out, split))
    with pytest.raises(MemgruError, match="train_magnitude_range"):
        tr.build_dataset(tmp_path, seed=0, wheel=wheel, train_magnitude_range=(0.5, 0.2))


def test_more_training_copies_add_fresh_fakes_without_changing_val_or_test(built, tmp_path):
    out, summary = built  # built with the default TRAIN_COPIES
    wheel = out.parent / "fake_traffic.whl"
    two = tr.build_dataset(tmp_path, seed=0, wheel=wheel, val_fraction=0.3, include_unusual=False, train_copies=2)
    for split in ("val", "test"):
        np.testing.assert_array_equal(tr.load_points(tmp_path, split), tr.load_points(out, split))
    many, few = tr.load_split(out, "train").meta, tr.load_split(tmp_path, "train").meta
    assert summary["parameters"]["train_copies"] == tr.TRAIN_COPIES > 2 == two["parameters"]["train_copies"]
    n_real = (few["label"] == 0).sum() // 2
    assert (many["label"] == 0).sum() == (many["label"] == 1).sum() == tr.TRAIN_COPIES * n_real
    assert sorted(many["copy"].unique()) == list(range(tr.TRAIN_COPIES))
    # every copy of a real window carries its own fake (magnitudes are continuous draws: all distinct)
    fakes = many[many["label"] == 1]
    assert fakes["magnitude"].nunique() == len(fakes)
    # the first two copies are the two-copy build's training split, row for row after sorting
    key = list(few.columns)
    first = many[many["copy"] < 2].sort_values(key).reset_index(drop=True)
    pd.testing.assert_frame_equal(first, few.sort_values(key).reset_index(drop=True))
    with pytest.raises(MemgruError, match="train_copies"):
        tr.build_dataset(tmp_path, seed=0, wheel=wheel, train_copies=0)


def test_wheel_lookup_errors(tmp_path):
    with pytest.raises(MemgruError, match="not found"):
        tr.find_traffic_wheel(tmp_path, download=False)
    (tmp_path / tr.TRAFFIC_WHEEL).write_bytes(b"not the wheel")
    with pytest.raises(MemgruError, match="sha256"):
        tr.find_traffic_wheel(tmp_path, download=False)
    with pytest.raises(MemgruError, match="unknown trajectory split"):
        tr.load_split(tmp_path, "holdout")


# ------------------------------------------------------------------------------------ user input


@pytest.fixture(scope="module")
def stats() -> dict:
    raw = tr.featurize_raw(np.stack([synth_track(tr.WINDOW_POINTS, turn_deg_s=r) for r in (0.0, 0.5)]))
    return tr.feature_stats(raw)


def write_csv(path: Path, pts: np.ndarray, drop: tuple[str, ...] = (), iso: bool = False) -> Path:
    df = to_frame(pts, "abc123").drop(columns=["icao24", "callsign", *drop])
    df["timestamp"] = (pd.to_datetime(pts[:, T], unit="s", utc=True).strftime("%Y-%m-%dT%H:%M:%SZ")
                       if iso else pts[:, T])
    df.to_csv(path, index=False)
    return path


def test_user_csv_any_length_scored_over_windows(tmp_path, stats):
    pts = synth_track(100, dt=5.0)
    x, info = tr.read_user_track(write_csv(tmp_path / "t.csv", pts, iso=True), stats, stride=8)
    assert x.shape == (info["n_windows"], tr.WINDOW_STEPS, len(tr.FEATURE_NAMES)) and x.dtype == np.float32
    assert info["n_windows"] == (50 - tr.WINDOW_POINTS) // 8 + 1 and info["derived_fields"] == []
    x2, _ = tr.read_user_track(write_csv(tmp_path / "s.csv", pts), stats, stride=8)
    np.testing.assert_allclose(x2, x, atol=1e-4)


def test_user_csv_without_reported_fields_derives_them(tmp_path, stats):
    pts = synth_track(60, turn_deg_s=0.3)
    x, info = tr.read_user_track(write_csv(tmp_path / "t.csv", pts, drop=("groundspeed", "track",
                                                                         "vertical_rate")), stats)
    assert info["derived_fields"] == ["groundspeed", "track", "vertical_rate"]
    raw = x * np.asarray(stats["std"]) + np.asarray(stats["mean"])
    names = list(tr.FEATURE_NAMES)
    # derived fields match the positions, so the consistency features carry no signal
    assert np.abs(raw[..., names.index("groundspeed_residual_kt")]).max() < 2.0
    assert np.abs(raw[..., names.index("track_residual_deg")]).max() < 1.0
    assert np.abs(raw[..., names.index("vertical_rate_residual_ft_min")]).max() < 1.0
    np.testing.assert_allclose(raw[:, 1:-1, names.index("turn_rate_reported_deg_s")], 0.3, atol=0.01)


def test_user_json_records_like_the_sample_files(tmp_path, stats):
    path = tmp_path / "t.json"
    path.write_text(to_frame(synth_track(40), "abc123").to_json(orient="records"))
    x, info = tr.read_user_track(path, stats)
    assert len(x) == 1 and info["icao24"] == "abc123"
    gz = tmp_path / "t.json.gz"
    gz.write_bytes(gzip.compress(path.read_bytes()))
    np.testing.assert_array_equal(tr.read_user_track(gz, stats)[0], x)


def interleaved_csv(path: Path, pts: np.ndarray) -> Path:
    """The track as ADS-B messages: even rows carry the position and altitude, odd rows the velocity."""
    df = to_frame(pts, "abc123").drop(columns=["icao24", "callsign"])
    df["timestamp"] = pts[:, T]
    odd = np.arange(len(df)) % 2 == 1
    df.loc[odd, ["latitude", "longitude", "altitude"]] = np.nan
    df.loc[~odd, ["groundspeed", "track", "vertical_rate"]] = np.nan
    df.to_csv(path, index=False)
    return path


def test_rows_with_only_some_fields_are_refused_unless_missing_values_are_allowed(tmp_path, stats):
    """Message-level ADS-B (position and velocity in separate rows): strict reading names the first empty
    cell and says how to read such a file; with `allow_missing` each field is interpolated from the rows
    that carry it, giving the features of the complete 1-s track (to interpolation error), and the empty
    cells are counted."""
    pts = synth_track(400, dt=1.0, turn_deg_s=0.2, vr_fpm=800)
    path = interleaved_csv(tmp_path / "messages.csv", pts)
    with pytest.raises(MemgruError, match=r"column latitude is empty or not a number in data row 2 \(200 row\(s\) in "
                                          r"all\); if rows carry only some fields .*--allow-missing"):
        tr.read_user_track(path, stats)
    x, info = tr.read_user_track(path, stats, allow_missing=True)
    full, _ = tr.read_user_track(write_csv(tmp_path / "full.csv", pts), stats)
    assert x.shape == full.shape
    raw, raw_full = (v * np.asarray(stats["std"]) + np.asarray(stats["mean"]) for v in (x, full))
    names = list(tr.FEATURE_NAMES)
    for name, tol in (("speed_change_derived_kt", 0.5), ("groundspeed_residual_kt", 0.5),
                      ("turn_rate_reported_deg_s", 0.01), ("vertical_rate_reported_ft_min", 1.0),
                      ("altitude_from_start_ft", 10.0), ("drift_cross_m", 50.0)):
        np.testing.assert_allclose(raw[..., names.index(name)], raw_full[..., names.index(name)], atol=tol,
                                   err_msg=name)
    assert info["missing_cells"] == {c: 200 for c in ("latitude", "longitude", "altitude", "groundspeed", "track",
                                                      "vertical_rate")}
    assert tr.read_track_file(write_csv(tmp_path / "f.csv", pts), allow_missing=True)[1]["missing_cells"] == {}


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d.assign(altitude=d["altitude"].astype(object).where(d.index != 4, "FL350")),
     "column altitude is empty or not a number in data row 5"),
    (lambda d: d.assign(latitude=np.nan), "column latitude has no value at all"),
    (lambda d: d.assign(latitude=d["latitude"].where(d.index != 3, 200.0)), "impossible latitude 200"),
])
def test_missing_values_allowed_still_refuse_text_empty_fields_and_bad_values(tmp_path, stats, edit, message):
    with pytest.raises(MemgruError, match=message):
        tr.read_user_track(bad_csv(tmp_path, edit), stats, allow_missing=True)


def bad_csv(tmp_path: Path, edit) -> Path:
    pts = synth_track(60)
    df = to_frame(pts, "abc123").drop(columns=["icao24", "callsign"])
    df["timestamp"] = pts[:, T]
    df = edit(df)
    path = tmp_path / "bad.csv"
    df.to_csv(path, index=False)
    return path


@pytest.mark.parametrize(("edit", "message"), [
    (lambda d: d.drop(columns=["latitude"]), "lacks the column.*latitude"),
    (lambda d: d.assign(altitude=d["altitude"].where(d.index != 7)), "altitude is empty or not a number in data row 8"),
    (lambda d: d.assign(timestamp=d["timestamp"].where(d.index != 9, d["timestamp"].shift(1))), "repeats"),
    (lambda d: d.assign(timestamp=d["timestamp"].where(d.index != 9, 0.0)), "goes back"),
    (lambda d: d.assign(latitude=d["latitude"].where(d.index != 3, 200.0)), "impossible latitude 200"),
    (lambda d: d.iloc[:20], "too few usable points"),
    (lambda d: d.assign(altitude=d["altitude"] * 0.3048), "metres"),
    (lambda d: d.assign(altitude=3000 + np.arange(len(d)) * 500.0 * 0.3048, vertical_rate=3000.0), "metres"),
    (lambda d: pd.concat([d.assign(icao24="a"), d.assign(icao24="b")]), "2 aircraft"),
])
def test_user_csv_errors(tmp_path, stats, edit, message):
    with pytest.raises(MemgruError, match=message):
        tr.read_user_track(bad_csv(tmp_path, edit), stats)


def test_user_file_refused_by_size_and_content(tmp_path, stats):
    big = tmp_path / "big.csv"
    with big.open("wb") as f:
        f.truncate(tr.MAX_USER_FILE_BYTES + 1)
    with pytest.raises(MemgruError, match="over the 50 MiB limit"):
        tr.read_user_track(big, stats)
    binary = tmp_path / "track.csv"
    binary.write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)))
    with pytest.raises(MemgruError, match="binary"):
        tr.read_user_track(binary, stats)
    latin = tmp_path / "latin.csv"
    latin.write_bytes("timestamp,latitude\n1,\xe9\n".encode("latin-1"))
    with pytest.raises(MemgruError, match="not UTF-8"):
        tr.read_user_track(latin, stats)
    with pytest.raises(MemgruError, match="track file not found"):
        tr.read_user_track(tmp_path / "missing.csv", stats)


def test_sample_assets_are_readable_and_labelled(stats):
    manifest = pd.read_csv(ASSETS / "samples.csv")
    assert set(manifest.loc[manifest["truth"] == "false", "family"]) == {*FAMILIES, "gnss_interference"}
    real_false = manifest[manifest["family"] == "gnss_interference"].iloc[0]  # a real flight, no magnitude
    assert np.isnan(real_false["magnitude"]) and real_false["source"] == "4baac6"
    assert (manifest["truth"] == "real").sum() >= 3
    for name in manifest["file"]:
        x, info = tr.read_user_track(ASSETS / name, stats)
        assert len(x) >= 1 and info["derived_fields"] == []
    assert sum(p.stat().st_size for p in ASSETS.iterdir()) < 1_000_000


def test_user_track_text_io_roundtrip(tmp_path):
    # ISO timestamps with offsets and epoch-millisecond integers both become seconds
    pts = synth_track(40)
    df = to_frame(pts, "x").drop(columns=["icao24", "callsign"])
    path = tmp_path / "ms.csv"
    df.to_csv(path, index=False)
    reports, _ = tr.read_track_file(path)
    np.testing.assert_allclose(reports["time_s"], pts[:, T])
    df["timestamp"] = pd.to_datetime(pts[:, T], unit="s", utc=True).tz_convert("Europe/Zurich").strftime(
        "%Y-%m-%dT%H:%M:%S%z")
    buf = io.StringIO()
    df.to_csv(buf, index=False)
    path.write_text(buf.getvalue())
    np.testing.assert_allclose(tr.read_track_file(path)[0]["time_s"], pts[:, T])


def test_split_unusual_puts_every_second_flight_of_each_category_in_training():
    from memgru.tasks.trajectory import split_unusual

    frames = [(c, f"{c}/{n}", pd.DataFrame()) for c, n in
              [("gliders", "a"), ("gliders", "b"), ("gliders", "c"), ("surveys", "x"), ("tv_relay", "t1"),
               ("tv_relay", "t2")]]
    train, check = split_unusual(frames)
    assert [f for _, f, _ in train] == ["gliders/b", "tv_relay/t2"]
    assert [f for _, f, _ in check] == ["gliders/a", "gliders/c", "surveys/x", "tv_relay/t1"]
