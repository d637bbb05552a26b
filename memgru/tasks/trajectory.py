"""Trajectory task: real ADS-B tracks versus generated false tracks.

Data (built by `build_dataset`, see also `trajectory_fakes` for the false-track families):

- real tracks come from the sample collections inside the MIT-licensed `traffic==2.13` wheel
  (OpenSky-derived ADS-B), read with pandas straight from the zip, without installing `traffic`:
  `collections/quickstart.json.gz` (2021-10-07, around Paris, 1 s reports, 213 aircraft) is split
  by aircraft (icao24) into train and validation, and `collections/savan.json.gz` (one calibration
  aircraft flying level at FL220) joins train; `collections/switzerland.json.gz` (2018-08-01,
  Swiss airspace, 10 s state vectors, 842 aircraft, all in cruise) is the held-out test set.
  Every second flight of unusual shape in the wheel's sample folders (`UNUSUAL_COLLECTIONS`:
  calibration orbits, survey grids, gliders, sky drawings, TV-relay racetracks ...) also joins
  train; the others (aircraft never seen in training) are the real-only check split `unusual`.
- every track is cleaned (`trajectory_tracks.clean_track`: ground and low segments, duplicated
  times, out-of-range values and glitches; `drop_filled_gaps`: coverage gaps that the published
  sample filled by interpolation), resampled to `STEP_S` = 10 s (the test set's own
  sampling), split at gaps of more than 20 s, stripped of a stale first position per piece
  (`trajectory_tracks.drop_stale_start`), and cut into windows of `WINDOW_POINTS` = 33 points
  (32 steps, 320 s).
- each real window gets one false counterpart derived from real windows of the *same* split
  (label 1), so classes are balanced and test fakes never see training aircraft; training uses
  every real window `TRAIN_COPIES` times, each time with a fake of its own. Fake
  magnitudes are uniform in [0, 1] for validation and test and in `TRAIN_MAGNITUDE_RANGE` for
  training (a fake of magnitude ~0 is a copy of a real track: labelled false, it is label noise). Train and
  validation windows of both classes get the report timing noise and position glitches of the
  test data (`trajectory_tracks.jitter_positions`); test windows keep their own.

Features (`featurize`, F = 13 per step, T = 32 steps per window) are built from consecutive points
and never use absolute position, heading or speed: position-derived speed change / turn rate /
climb rate (positions taken along the path flown at the aircraft's altitude, each step in the local
east/north frame at its own latitude: `trajectory_tracks.path_at_altitude`, the frame the reported
velocity lives in; the fakes are written back through its inverse), the reported
groundspeed change / turn rate / vertical rate, their differences, altitude relative to the window
start, the drift of the positions from the dead-reckoned reported velocity in the frame of the first
reported track, and the lateral acceleration. They are standardised with train-only statistics
(`feature_stats.json`).
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import numpy as np
import pandas as pd

from memgru.errors import MemgruError
from memgru.tasks.common import SequenceSet, decode_text, load_arrays, read_user_file, write_json
from memgru.tasks.trajectory_fakes import FAMILIES, G, make_fake, make_fakes
from memgru.tasks.trajectory_fakes import FAMILY_KNOBS as FAMILY_KNOBS  # the detection experiment reads it here
from memgru.tasks.trajectory_tracks import (
    ALT,
    GS,
    KT,
    LAT,
    LON,
    POINT_COLUMNS,
    TRK,
    VR,
    T,
    check_window_physics,
    clean_track,
    cut_windows,
    derive_reported,
    drop_filled_gaps,
    heading_unit,
    jitter_positions,
    path_at_altitude,
    resample_track,
    to_enu,
    true_runs,
    wrap_deg,
)

STEP_S = 10.0
"""Time step (s) of every resampled track: the sampling of the held-out test collection."""
WINDOW_STEPS = 32
"""Feature steps per model input window (T)."""
WINDOW_POINTS = WINDOW_STEPS + 1
"""Track points per window: features are computed between consecutive points."""
MAX_GAP_S = 20.0
"""Longest hole (s) between valid reports that resampling interpolates across; longer splits the track."""
MIN_ALTITUDE_FT = 2000.0
"""Reports below this barometric altitude (ft) are dropped: the task is about airborne tracks."""

TRAFFIC_VERSION = "2.13"
TRAFFIC_WHEEL = f"traffic-{TRAFFIC_VERSION}-py3-none-any.whl"
TRAFFIC_WHEEL_SHA256 = "5e0cd61d931d03103294361542188f08f959a55e862d5cba80ab61291021e66c"
"""sha256 of the wheel the dataset was built and checked with (PyPI, MIT license)."""
SAMPLES = "traffic/data/samples/"
TRAIN_COLLECTION = "collections/quickstart"
TEST_COLLECTION = "collections/switzerland"
EXTRA_TRAIN_COLLECTIONS = ("collections/savan",)
"""Extra training-only collections: `savan` (2022, one French calibration aircraft, 17 flights,
mostly level at FL220) gives the level, steady flight that quickstart (departures and arrivals
around Paris) almost lacks and that every test window is (cruise over Switzerland)."""
UNUSUAL_COLLECTIONS = ("gliders", "surveys", "calibration", "featured", "firefighting", "tv_relay",
                       "military", "surveillance")
"""Folders of real flights of unusual shape (thermalling, survey grids, ILS calibration orbits,
sky drawings, racetracks, holdings). By default every second flight of each folder trains (as real
flights, with fakes made from them) and the others, minus any aircraft seen in training, form the
real-only check split `unusual` (`split_unusual`)."""

TRAIN_MAGNITUDE_RANGE = (0.2, 1.0)
"""Magnitudes of the training split's fakes; validation and test keep [0, 1]. Below 0.2 every family
is normal flying by its own definition (`FAMILY_DOCS`: a speed ramp of 0.2 m/s^2 is what an airliner
does in level flight; ghost turns under 24 deg of bank, climbs under 1,600 ft/min, velocity biases
under 8 kt / 4 deg / 400 ft/min; near 0 a replay without offset is a real track), so such fakes teach
the model to call ordinary turns and climbs false. Over three training seeds each (float recipe) the
floor 0.1 -> 0.2 kept test accuracy (92.31 -> 92.50 %, mean) and halved test false alarms on real
windows (7.1 -> 3.3 %); the floor 0 -> 0.1 had raised accuracy from 88.6 to 90.1 % (README)."""

TRAIN_COPIES = 10
"""Times every real training window is used, each time with a fake of its own and its own report
timing noise (both classes). With 2 copies (10 epochs) the float model learnt its training fakes by
heart (training loss 0.04, validation 0.24). Over three training seeds each (float recipe, test set
unchanged): 10 copies for 2 epochs (the same gradient steps) 91.5 % test accuracy against 90.1 %,
for 4 epochs 93.1 % (false alarms 6.0 against 9.4 %, validation 95.2 against 93.4 %); 20 copies for
2 epochs 92.3 %."""
MAIN_STREAM_COPIES = 2
"""Training copies drawn from the build's main random stream, before validation and test; the rest
come from a stream of their own (`EXTRA_COPIES_STREAM`), so more copies leave validation and test
unchanged (these two copies are the training split the datasets before `TRAIN_COPIES` had)."""
EXTRA_COPIES_STREAM = 1
"""Second seed word of the random stream of the training copies beyond `MAIN_STREAM_COPIES`."""

FEATURE_NAMES = (
    "speed_change_derived_kt", "turn_rate_derived_deg_s", "climb_rate_derived_ft_min",
    "groundspeed_change_reported_kt", "turn_rate_reported_deg_s", "vertical_rate_reported_ft_min",
    "groundspeed_residual_kt", "track_residual_deg", "vertical_rate_residual_ft_min",
    "altitude_from_start_ft", "drift_along_m", "drift_cross_m", "lateral_accel_g",
)
"""The F = 13 features per step, in order (before standardisation)."""

MAX_USER_FILE_BYTES = 50 * 1024 * 1024
"""User track files larger than this (bytes) are refused before they are parsed."""
MAX_TIME_S = 9e9
"""Largest |timestamp| accepted (s from the origin): pandas date-times, used in cleaning, end in 2262."""
MAX_TRACK_SPAN_S = 7 * 86400.0
"""Longest time one user track file may span (s); resampling allocates a point every `STEP_S` over it."""
SPLITS = ("train", "val", "test")


# --------------------------------------------------------------------------------------- features


def featurize_raw(windows: np.ndarray) -> np.ndarray:
    """Unnormalised features [N, P-1, F] of windows [N, P, 7] (see `FEATURE_NAMES` for units).

    Step k describes the motion from point k to point k+1. Speeds are relative to the first
    reported groundspeed: the absolute speed says more about the data source (cruise at 450 kt
    in the test set, approaches at 250 kt in training) than about a track's truth, and a model
    keyed on it would flag every fast real aircraft. The derived turn rate of step 0 is 0
    (it needs a previous step); the track residual is 0 when the derived speed is below 30 kt,
    where a course is undefined.
    """
    w = np.asarray(windows, dtype=np.float64)
    if w.ndim == 2:
        w = w[None]
    dt = np.diff(w[..., T], axis=-1)
    enu = path_at_altitude(w)
    d = np.diff(enu, axis=-2)
    speed_d = np.hypot(d[..., 0], d[..., 1]) / dt / KT
    course_d = np.degrees(np.arctan2(d[..., 0], d[..., 1]))
    turn_d = np.zeros_like(course_d)
    turn_d[..., 1:] = wrap_deg(np.diff(course_d, axis=-1)) / dt[..., 1:]
    climb_d = np.diff(w[..., ALT], axis=-1) / dt * 60.0
    gs_rep = 0.5 * (w[..., :-1, GS] + w[..., 1:, GS])
    dtrk = wrap_deg(np.diff(w[..., TRK], axis=-1))
    trk_mid = w[..., :-1, TRK] + 0.5 * dtrk
    turn_rep = dtrk / dt
    vr_rep = 0.5 * (w[..., :-1, VR] + w[..., 1:, VR])
    trk_res = np.where(speed_d >= 30.0, wrap_deg(trk_mid - course_d), 0.0)
    alt_rel = w[..., 1:, ALT] - w[..., :1, ALT]
    v_rep = heading_unit(w[..., TRK]) * (w[..., GS] * KT)[..., None]
    dead = np.cumsum(0.5 * (v_rep[..., :-1, :] + v_rep[..., 1:, :]) * dt[..., None], axis=-2)
    drift = enu[..., 1:, :] - dead
    u0 = heading_unit(w[..., 0, TRK])[..., None, :]
    along = (drift * u0).sum(-1)
    cross = drift[..., 0] * u0[..., 1] - drift[..., 1] * u0[..., 0]
    gs0 = w[..., :1, GS]
    feats = [speed_d - gs0, turn_d, climb_d, gs_rep - gs0, turn_rep, vr_rep, gs_rep - speed_d, trk_res,
             vr_rep - climb_d, alt_rel, along, cross, speed_d * KT * np.radians(turn_d) / G]
    return np.stack(feats, axis=-1)


def feature_stats(raw: np.ndarray) -> dict:
    """Standardisation statistics of raw training features [N, T, F] (JSON-able).

    Stores per-feature mean and standard deviation together with the window geometry, so that a
    model checkpoint carrying this dict can featurise user tracks exactly like its training data.
    """
    flat = raw.reshape(-1, raw.shape[-1])
    std = flat.std(axis=0)
    return {
        "feature_names": list(FEATURE_NAMES),
        "mean": flat.mean(axis=0).tolist(),
        "std": np.where(std > 1e-9, std, 1.0).tolist(),
        "step_s": STEP_S,
        "window_points": WINDOW_POINTS,
    }


def featurize(windows: np.ndarray, stats: dict) -> np.ndarray:
    """Model-ready float32 features [N, T, F] of windows [N, P, 7], standardised with `stats`."""
    if list(stats.get("feature_names", [])) != list(FEATURE_NAMES):
        raise MemgruError("feature statistics do not match this version's trajectory features; rebuild the data")
    raw = featurize_raw(windows)
    x = (raw - np.asarray(stats["mean"])) / np.asarray(stats["std"])
    return x.astype(np.float32)


# ------------------------------------------------------------------------------------ real tracks


def find_traffic_wheel(cache_dir: Path, *, download: bool = True) -> Path:
    """Path of the `traffic==2.13` wheel in `cache_dir`, fetched with pip if it is not there yet.

    The wheel is only read as a zip archive (its sample data); `traffic` is never installed.
    Raises MemgruError when the download fails or the file's sha256 is not the expected one.
    """
    cache_dir = Path(cache_dir)
    wheel = cache_dir / TRAFFIC_WHEEL
    if not wheel.is_file():
        if not download:
            raise MemgruError(f"{TRAFFIC_WHEEL} not found in {cache_dir}")
        cache_dir.mkdir(parents=True, exist_ok=True)
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
               f"traffic=={TRAFFIC_VERSION}", "-d", str(cache_dir)]
        proc = subprocess.run(cmd, capture_output=True, text=True, check=False)
        if proc.returncode != 0 or not wheel.is_file():
            last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
            raise MemgruError(
                f"could not download traffic=={TRAFFIC_VERSION} with pip ({last}); "
                f"put {TRAFFIC_WHEEL} into {cache_dir} by hand"
            )
    digest = hashlib.sha256(wheel.read_bytes()).hexdigest()
    if digest != TRAFFIC_WHEEL_SHA256:
        raise MemgruError(f"{wheel} has sha256 {digest[:12]}..., expected {TRAFFIC_WHEEL_SHA256[:12]}...")
    return wheel


def read_collection(archive: zipfile.ZipFile, name: str) -> pd.DataFrame:
    """One `traffic` sample file (`name` without `.json.gz`) as a DataFrame with a float `time_s`."""
    member = f"{SAMPLES}{name}.json.gz"
    df = pd.read_json(io.BytesIO(archive.read(member)), compression="gzip")
    return _with_time_s(df)


def _with_time_s(df: pd.DataFrame) -> pd.DataFrame:
    ts = df["timestamp"]
    if pd.api.types.is_datetime64_any_dtype(ts):
        utc = ts.dt.tz_localize("UTC") if ts.dt.tz is None else ts.dt.tz_convert("UTC")
        df["time_s"] = (utc - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds()
    else:
        df["time_s"] = pd.to_numeric(ts, errors="coerce").astype(float)
    return df


def real_windows(df: pd.DataFrame, *, stride: int) -> tuple[np.ndarray, pd.DataFrame]:
    """Clean, resample and cut every aircraft of a collection into windows [N, P, 7] with metadata.

    Metadata columns: `source` (icao24), `callsign`, `segment` (index of the gap-free piece of
    that aircraft's track) and `start_time_s`. Windows whose derived motion is physically
    impossible (`check_window_physics`) are dropped.
    """
    out, meta = [], []
    for icao, g in df.groupby("icao24", sort=True):
        cleaned = clean_track(g, min_altitude_ft=MIN_ALTITUDE_FT)
        callsign = str(g["callsign"].dropna().iloc[0]) if g["callsign"].notna().any() else ""
        cleaned = drop_filled_gaps(cleaned, max_gap_s=MAX_GAP_S)
        for seg_id, seg in enumerate(resample_track(cleaned, step_s=STEP_S, max_gap_s=MAX_GAP_S)):
            w = cut_windows(seg, WINDOW_POINTS, stride)
            if len(w) == 0:
                continue
            w = w[check_window_physics(w)]
            out.append(w)
            meta += [{"source": icao, "callsign": callsign, "segment": seg_id, "start_time_s": s}
                     for s in w[:, 0, T]]
    if not out:
        return np.empty((0, WINDOW_POINTS, len(POINT_COLUMNS))), pd.DataFrame(
            columns=["source", "callsign", "segment", "start_time_s"])
    return np.concatenate(out), pd.DataFrame(meta)


# ------------------------------------------------------------------------------------ the dataset


def _split_set(real: np.ndarray, meta: pd.DataFrame, split: str, rng: np.random.Generator,
               magnitude_range: tuple[float, float], families: tuple[str, ...], copies: int, augment: bool,
               first_copy: int = 0):
    """Real windows plus one fake per real window (label 1), shuffled; returns points, labels, meta.

    With `copies` > 1 every real window is used that many times, each time with its own fake; the
    metadata's `copy` column numbers them from `first_copy`.
    With `augment`, every window, real or false, then gets report timing noise
    (`jitter_positions`): the 1 s training reports are much cleaner than the 10 s test state
    vectors, and noise added to both classes alike teaches the model to ignore it.
    """
    real = np.concatenate([real] * copies)
    meta = pd.concat([meta.assign(copy=c) for c in range(first_copy, first_copy + copies)], ignore_index=True)
    fakes, fake_meta = make_fakes(real, meta["source"].to_numpy(), rng, families=families,
                                  magnitude_range=magnitude_range, timing_noise=not augment)
    real_meta = meta.assign(family="real", magnitude=0.0, source2="")
    fake_meta = fake_meta.assign(**{c: meta[c].to_numpy() for c in ("callsign", "segment", "start_time_s", "copy")})
    points = np.concatenate([real, fakes])
    if augment:
        points = np.stack([jitter_positions(p, rng) for p in points])
    y = np.concatenate([np.zeros(len(real), np.int64), np.ones(len(fakes), np.int64)])
    all_meta = pd.concat([real_meta, fake_meta], ignore_index=True)
    all_meta.insert(0, "label", y)
    all_meta.insert(0, "split", split)
    order = rng.permutation(len(y))
    cols = ["split", "label", "family", "magnitude", "source", "source2", "callsign", "segment",
            "start_time_s", "copy"]
    return points[order], y[order], all_meta.iloc[order].reset_index(drop=True)[cols]


def build_dataset(
    out_dir: Path,
    *,
    seed: int = 0,
    cache_dir: Path | None = None,
    train_stride: int = 4,
    test_stride: int = WINDOW_STEPS,
    train_copies: int = TRAIN_COPIES,
    val_fraction: float = 0.2,
    magnitude_range: tuple[float, float] = (0.0, 1.0),
    train_magnitude_range: tuple[float, float] | None = TRAIN_MAGNITUDE_RANGE,
    families: tuple[str, ...] = FAMILIES,
    extra_train: tuple[str, ...] = EXTRA_TRAIN_COLLECTIONS,
    include_unusual: bool = True,
    unusual_in_train: bool = True,
    include_incident: bool = True,
    wheel: Path | None = None,
) -> dict:
    """Build the trajectory splits deterministically from the `traffic` wheel; return a JSON summary.

    Writes into `out_dir`: `{train,val,test}.npz/.csv` (SequenceSet: x float32 [N, 32, 13], y int64
    0 = real / 1 = false, meta), `{split}_points.npz` (the raw windows [N, 33, 7], POINT_COLUMNS,
    for plots and re-featurising), `feature_stats.json` (train-only standardisation), `summary.json`,
    and with `include_unusual` a real-only `unusual` split of odd-shaped real flights.
    `train_stride` / `test_stride` are the window starts' spacing in steps (train and validation
    windows overlap; test windows do not). Fake magnitudes are drawn uniformly from
    `magnitude_range` (0 = indistinguishable from the source track, 1 = blatant), the training
    split's from `train_magnitude_range` (default `TRAIN_MAGNITUDE_RANGE`; None = `magnitude_range`;
    a fake of magnitude ~0 is a real track labelled false; the draws are the same in number either
    way, so validation and test do not change). Every real
    train window is used `train_copies` times, each copy with its own fake and noise (see
    `TRAIN_COPIES`; copies beyond `MAIN_STREAM_COPIES` are drawn from a random stream of their own, so
    validation and test are the same for any `train_copies` >= `MAIN_STREAM_COPIES`). The
    `traffic` wheel is looked up (or pip-downloaded) in `cache_dir` (default `out_dir/cache`) and
    checked against its sha256, unless `wheel` names a zip with the same sample paths (tests).
    `extra_train` collections join the training split only. With `unusual_in_train`, every second
    unusual flight of each category (`split_unusual`) joins the training split as real flights (with
    fakes made from them like any other) and only the others stay in the `unusual` check split. With
    `include_incident`, the `incident` split holds the windows of the `INCIDENT_FLIGHTS` the wheel has,
    labelled by `label_incident` (real flights with known trouble; no random draws, so it changes nothing
    else).
    """
    t0 = time.perf_counter()
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    if wheel is None:
        wheel = find_traffic_wheel(Path(cache_dir) if cache_dir is not None else out_dir / "cache")
    train_range = magnitude_range if train_magnitude_range is None else train_magnitude_range
    if isinstance(train_copies, bool) or not isinstance(train_copies, int) or train_copies < 1:
        raise MemgruError(f"train_copies must be an integer >= 1, got {train_copies!r}")
    for name, (lo, hi) in (("magnitude_range", magnitude_range), ("train_magnitude_range", train_range)):
        if not 0.0 <= lo <= hi <= 1.0:
            raise MemgruError(f"{name} must satisfy 0 <= low <= high <= 1, got {(lo, hi)}")
    unknown = set(families) - set(FAMILIES)
    if unknown or not families:
        raise MemgruError(f"unknown fake families {sorted(unknown)}; choose from {', '.join(FAMILIES)}")
    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(wheel) as archive:
        train_df = read_collection(archive, TRAIN_COLLECTION)
        extra_df = [read_collection(archive, name) for name in extra_train]
        test_df = read_collection(archive, TEST_COLLECTION)
        frames = _unusual_frames(archive) if include_unusual or unusual_in_train else []
        incident_dfs = [(name, df) for name in (INCIDENT_FLIGHTS if include_incident else ())
                        if (df := _read_if_present(archive, name)) is not None]
    unusual_train, unusual_check = split_unusual(frames) if unusual_in_train else ([], frames)
    extra_df += [df for _, _, df in unusual_train]
    unusual = _unusual_windows(unusual_check) if include_unusual and unusual_check else None
    aircraft = np.array(sorted(train_df["icao24"].unique()))
    n_val = round(val_fraction * len(aircraft))
    val_ac = set(rng.permutation(aircraft)[:n_val])
    fit_df = pd.concat([train_df[~train_df["icao24"].isin(val_ac)],
                        *(df[~df["icao24"].isin(val_ac)] for df in extra_df)], ignore_index=True)
    sets = {
        "train": real_windows(fit_df, stride=train_stride),
        "val": real_windows(train_df[train_df["icao24"].isin(val_ac)], stride=train_stride),
        "test": real_windows(test_df, stride=test_stride),
    }
    main_copies = min(train_copies, MAIN_STREAM_COPIES)
    built = {
        "train": _split_set(*sets["train"], "train", rng, train_range, families, main_copies, True),
        "val": _split_set(*sets["val"], "val", rng, magnitude_range, families, 1, True),
        "test": _split_set(*sets["test"], "test", rng, magnitude_range, families, 1, False),
    }
    if train_copies > main_copies:
        more_rng = np.random.default_rng([seed, EXTRA_COPIES_STREAM])
        more = _split_set(*sets["train"], "train", more_rng, train_range, families, train_copies - main_copies, True,
                          first_copy=main_copies)
        (points, y, meta), (more_points, more_y, more_meta) = built["train"], more
        order = more_rng.permutation(len(y) + len(more_y))
        built["train"] = (np.concatenate([points, more_points])[order], np.concatenate([y, more_y])[order],
                          pd.concat([meta, more_meta], ignore_index=True).iloc[order].reset_index(drop=True))
    stats = feature_stats(featurize_raw(built["train"][0]))
    write_json(out_dir / "feature_stats.json", stats)
    summary: dict = {"splits": {}, "parameters": {
        "seed": seed, "step_s": STEP_S, "window_points": WINDOW_POINTS, "train_stride": train_stride,
        "test_stride": test_stride, "train_copies": train_copies, "val_fraction": val_fraction,
        "magnitude_range": [float(v) for v in magnitude_range],
        "train_magnitude_range": [float(v) for v in train_range],
        "families": list(families), "extra_train": list(extra_train),
        "unusual_in_train": sorted(rel for _, rel, _ in unusual_train),
        "min_altitude_ft": MIN_ALTITUDE_FT, "max_gap_s": MAX_GAP_S},
        "sources": {"wheel": Path(wheel).name, "sha256": TRAFFIC_WHEEL_SHA256, "license": "MIT",
                    "train_val": f"{SAMPLES}{TRAIN_COLLECTION}.json.gz",
                    "train_extra": [f"{SAMPLES}{name}.json.gz" for name in extra_train],
                    "test": f"{SAMPLES}{TEST_COLLECTION}.json.gz"},
        "feature_names": list(FEATURE_NAMES)}
    for name, (points, y, meta) in built.items():
        _save_split(out_dir, name, points, y, meta, stats)
        summary["splits"][name] = _split_summary(y, meta)
    if unusual is not None:
        points, meta = unusual
        unseen = ~meta["source"].isin(set(fit_df["icao24"])).to_numpy()
        points, meta = points[unseen], meta[unseen].reset_index(drop=True)
        y = np.zeros(len(points), np.int64)
        _save_split(out_dir, "unusual", points, y, meta, stats)
        summary["splits"]["unusual"] = _split_summary(y, meta) | {
            "categories": meta["category"].value_counts().sort_index().to_dict()}
    if incident_dfs:
        parts = [incident_windows(df, name) for name, df in incident_dfs]
        points, meta = np.concatenate([w for w, _ in parts]), pd.concat([m for _, m in parts], ignore_index=True)
        _save_split(out_dir, "incident", points, meta["label"].to_numpy(np.int64), meta, stats)
        summary["splits"]["incident"] = _split_summary(meta["label"].to_numpy(), meta) | {
            "flights": [f"{SAMPLES}{name}.json.gz" for name, _ in incident_dfs]}
    summary["test_aircraft_also_in_train_val"] = len(set(test_df["icao24"]) & set(aircraft))
    summary["build_seconds"] = round(time.perf_counter() - t0, 1)
    write_json(out_dir / "summary.json", summary)
    return summary


def _save_split(out_dir: Path, name: str, points: np.ndarray, y: np.ndarray, meta: pd.DataFrame,
                stats: dict) -> None:
    SequenceSet(featurize(points, stats), y, meta).save(out_dir / name)
    np.savez_compressed(out_dir / f"{name}_points.npz", points=points, columns=np.array(POINT_COLUMNS))


def _split_summary(y: np.ndarray, meta: pd.DataFrame) -> dict:
    return {"n": len(y), "real": int((y == 0).sum()), "false": int((y == 1).sum()),
            "aircraft": int(meta["source"].nunique()),
            "families": meta["family"].value_counts().sort_index().to_dict()}


def _unusual_frames(archive: zipfile.ZipFile) -> list[tuple[str, str, pd.DataFrame]]:
    """(category, flight, reports) of every odd-shaped sample flight (`UNUSUAL_COLLECTIONS`), sorted."""
    frames = []
    names = sorted(n for n in archive.namelist() if n.startswith(SAMPLES) and n.endswith(".json.gz"))
    for member in names:
        rel = member[len(SAMPLES):-len(".json.gz")]
        category = rel.split("/")[0]
        if category not in UNUSUAL_COLLECTIONS:
            continue
        df = read_collection(archive, rel)
        if not {"icao24", "latitude", "longitude", "altitude", "timestamp"} <= set(df.columns):
            continue
        for col in POINT_COLUMNS[1:]:
            if col not in df:
                df[col] = np.nan
        if "callsign" not in df:
            df["callsign"] = ""
        frames.append((category, rel, df))
    return frames


def split_unusual(frames: list[tuple[str, str, pd.DataFrame]]) -> tuple[list, list]:
    """Unusual flights for training and for the held-out check: within each category, every second
    flight in name order trains (so every category with two or more flights is on both sides)."""
    train, check = [], []
    for category in sorted({c for c, _, _ in frames}):
        flights = [f for f in frames if f[0] == category]
        for i, flight in enumerate(flights):
            (train if i % 2 == 1 else check).append(flight)
    return train, check


def _unusual_windows(frames: list[tuple[str, str, pd.DataFrame]]) -> tuple[np.ndarray, pd.DataFrame]:
    """Real windows of odd-shaped flights (`_unusual_frames`), all real, non-overlapping."""
    out, metas = [], []
    for category, rel, df in frames:
        w, meta = real_windows(df, stride=WINDOW_STEPS)
        out.append(w)
        metas.append(meta.assign(category=category, flight=rel, family="real", magnitude=0.0, label=0,
                                 split="unusual"))
    meta = pd.concat(metas, ignore_index=True)
    return np.concatenate(out), meta


INCIDENT_FLIGHT = "noisy/noisy_spoofing"
"""A real flight under GNSS interference in the wheel's samples (THY9BP, icao24 4baac6, Istanbul to the Baltic
on 2024-09-17, 1 s OpenSky reports): over Romania its position freezes for ~20 min while the reported velocity
stays frozen too (the receiver's last values held), then for ~34 min it is placed near Lviv, in airspace closed
to civil traffic since 2022, moving west at 40-50 kt at FL380 with a reported groundspeed of 51 kt; then
normal reports resume over Poland. The only real false track the offline data offers."""
INCIDENT_FLIGHTS = (INCIDENT_FLIGHT, "noisy/noisy_time_issue")
"""Real flights with known trouble in the wheel's samples, for the `incident` split: the GNSS-interference
flight above, and a Porto departure (2022-07-13, 1 s reports) whose positions arrive in bursts for about
30 min (held, then jumping) while the velocity keeps being reported: a real track in poor shape, which
should not be called false outside its held stretches."""
INTERFERED_MAX_KT = 100.0
"""Reported groundspeed (kt) below which a report above `INTERFERED_MIN_ALT_FT` cannot be an airliner's own."""
INTERFERED_MIN_ALT_FT = 20_000.0
"""Altitude (ft) above which `INTERFERED_MAX_KT` applies (no airliner cruises at FL200+ that slowly)."""


def label_incident(reports: pd.DataFrame, *, min_held_s: float = MAX_GAP_S) -> np.ndarray:
    """Label every report of a flight [rows with `time_s` and `POINT_COLUMNS`] by physics rules alone.

    `interfered`: reported groundspeed below `INTERFERED_MAX_KT` above `INTERFERED_MIN_ALT_FT` (the GNSS
    solution, which gives both position and groundspeed, is not the aircraft's); `held`: position, groundspeed,
    track and vertical rate all equal to the previous report's for more than `min_held_s` seconds in a row (no
    new report: the last values held by the receiver or the data provider); `reported` otherwise. Rows are
    expected sorted by time.
    """
    gs, alt = reports["groundspeed"].to_numpy(float), reports["altitude"].to_numpy(float)
    kind = np.where((gs < INTERFERED_MAX_KT) & (alt > INTERFERED_MIN_ALT_FT), "interfered", "reported").astype(object)
    v = reports[["latitude", "longitude", "groundspeed", "track", "vertical_rate"]].to_numpy(float)
    same = np.concatenate([[False], np.all(v[1:] == v[:-1], axis=1)])
    t = reports["time_s"].to_numpy(float)
    for a, b in true_runs(same):  # rows a-1 .. b-1 hold one report
        if t[b - 1] - t[a - 1] > min_held_s:
            kind[a:b] = np.where(kind[a:b] == "interfered", "interfered", "held")
    return kind.astype(str)


def _labelled_reports(reports: pd.DataFrame) -> tuple[pd.DataFrame, np.ndarray]:
    """A flight's reports with a position, in time order (fresh index), and their `label_incident` kinds."""
    df = reports.dropna(subset=["latitude", "longitude"]).sort_values("time_s", kind="stable").reset_index(drop=True)
    return df, label_incident(df)


def _read_if_present(archive: zipfile.ZipFile, name: str) -> pd.DataFrame | None:
    """`read_collection` of a sample file, or None when the wheel lacks it (test wheels hold only some)."""
    return read_collection(archive, name) if f"{SAMPLES}{name}.json.gz" in archive.namelist() else None


def incident_windows(reports: pd.DataFrame, name: str = INCIDENT_FLIGHT) -> tuple[np.ndarray, pd.DataFrame]:
    """Windows [N, 33, 7] of a flight cut into stretches of one `label_incident` kind, with metadata.

    Reports without a position are dropped; each stretch is then read like a user's track file
    (`track_to_windows`, windows every `WINDOW_STEPS` steps, so they do not overlap) and a stretch too short
    for a window is skipped. Metadata: `stretch` (index in time order), `kind`, `label` (1 unless
    `reported`), `stretch_start_s` / `stretch_end_s` (s from the flight's first report), `start_time_s`,
    `source`, `callsign`, `flight`, `family` (= kind), `magnitude` (0).
    """
    df, kind = _labelled_reports(reports)
    t = df["time_s"].to_numpy(float)
    cuts = np.flatnonzero(kind[1:] != kind[:-1]) + 1
    source = str(df["icao24"].iloc[0]) if "icao24" in df else ""
    callsign = next(iter(df["callsign"].dropna().astype(str)), "") if "callsign" in df else ""
    out, meta = [], []
    for i, (a, b) in enumerate(zip(np.r_[0, cuts], np.r_[cuts, len(df)], strict=True)):
        try:
            w, _ = track_to_windows(df.iloc[a:b][["time_s", *POINT_COLUMNS[1:]]], stride=WINDOW_STEPS)
        except MemgruError:
            continue
        out.append(w)
        meta += [{"stretch": i, "kind": kind[a], "label": int(kind[a] != "reported"),
                  "stretch_start_s": t[a] - t[0], "stretch_end_s": t[b - 1] - t[0], "start_time_s": s,
                  "source": source, "callsign": callsign, "flight": name, "family": kind[a], "magnitude": 0.0}
                 for s in w[:, 0, T]]
    if not out:
        raise MemgruError(f"{name}: no stretch long enough for a {WINDOW_STEPS * STEP_S:.0f}-s window")
    return np.concatenate(out), pd.DataFrame(meta)


# ------------------------------------------------------------------------------------ whole tracks

TRACK_FAKES_SEED = 20261130
"""Seed of the false tracks `make_fake_tracks` makes for the `tracks` experiment."""
PAIRED_FAMILIES = ("replay", "splice")
"""False-track families that borrow another aircraft's track."""


def track_piece_ids(meta: pd.DataFrame, window_points: int = WINDOW_POINTS) -> np.ndarray:
    """The real track each window belongs to, [N] in `meta`'s row order (`track_pieces` numbers them).

    `meta` (source, segment, start_time_s) describes a split's real windows of `window_points` points. Windows of
    one aircraft's segment that follow each other (the next starting where the previous ends: the test split's
    windows do not overlap) share a track; a window the build dropped (impossible motion) ends one. Tracks are
    numbered in (source, segment, start) order.
    """
    step = (window_points - 1) * STEP_S
    meta = meta.reset_index(drop=True)
    order = meta.sort_values(["source", "segment", "start_time_s"], kind="stable").index.to_numpy()
    source, segment, start = (meta[c].to_numpy()[order] for c in ("source", "segment", "start_time_s"))
    follows = (source[1:] == source[:-1]) & (segment[1:] == segment[:-1]) & (np.abs(np.diff(start) - step) < 1e-6)
    ids = np.empty(len(meta), dtype=np.int64)
    ids[order] = np.concatenate([[0], np.cumsum(~follows)]) if len(meta) else []
    return ids


def track_pieces(points: np.ndarray, meta: pd.DataFrame) -> tuple[list[np.ndarray], pd.DataFrame]:
    """The real tracks a split's windows were cut from, rebuilt: [P_i, 7] each, and (source, segment, n_windows).

    `points` [N, P, 7] and `meta` (source, segment, start_time_s) are a split's real windows; the windows of one
    track (`track_piece_ids`) are joined at their shared point, so a track is gap-free and made only of windows
    the models are tested on.
    """
    meta = meta.reset_index(drop=True)  # row k describes points[k]
    ids = track_piece_ids(meta, points.shape[1])
    order = meta.sort_values(["source", "segment", "start_time_s"], kind="stable").index.to_numpy()
    pieces, rows = [], []
    for k in range(int(ids.max()) + 1 if len(ids) else 0):
        idx = order[ids[order] == k]
        pieces.append(np.concatenate([points[idx[0]], *(points[j][1:] for j in idx[1:])]))
        rows.append({"source": meta.loc[idx[0], "source"], "segment": meta.loc[idx[0], "segment"],
                     "n_windows": len(idx)})
    return pieces, pd.DataFrame(rows, columns=["source", "segment", "n_windows"])


def make_fake_tracks(pieces: list[np.ndarray], sources: np.ndarray, rng: np.random.Generator, *,
                     families: tuple[str, ...] = FAMILIES,
                     magnitude_range: tuple[float, float] = (0.0, 1.0)) -> tuple[list[np.ndarray], pd.DataFrame]:
    """One false track per real track (`make_fake` over the whole track), families balanced as far as they can be.

    Over a whole track the knob means what `FAMILY_DOCS` says, with onsets in the track's first half, so a ramp
    or a pull-off sustained over a long track ends far from where it began, and a ghost's single turn or climb
    is a small part of it. Replay and splice take another aircraft's track at least as long, cut to length; a
    track without one (the longest) gets a family from `families` that needs no partner (from `FAMILIES` when
    `families` has none). Returns the fakes and their `family`, `magnitude`, `source` (of the base track).
    """
    n = len(pieces)
    lengths = np.array([len(p) for p in pieces])
    src = np.asarray(sources).astype(str)
    fam = [str(f) for f in np.asarray(families)[rng.permutation(n) % len(families)]]
    mags = rng.uniform(*magnitude_range, size=n)
    solo = [f for f in families if f not in PAIRED_FAMILIES] or [f for f in FAMILIES if f not in PAIRED_FAMILIES]
    fakes = []
    for i in range(n):
        partners = np.flatnonzero((lengths >= lengths[i]) & (src != src[i]))
        if fam[i] in PAIRED_FAMILIES and len(partners) == 0:
            fam[i] = solo[families.index(fam[i]) % len(solo)]

        def pick_other(i: int = i, partners: np.ndarray = partners) -> np.ndarray:
            return pieces[int(rng.choice(partners))][:lengths[i]]

        fakes.append(make_fake(pieces[i], fam[i], float(mags[i]), rng, pick_other))
    return fakes, pd.DataFrame({"family": fam, "magnitude": mags, "source": src})


def track_windows(tracks: list[np.ndarray], stats: dict) -> tuple[np.ndarray, np.ndarray]:
    """Model-ready windows of whole tracks cut like the test split (non-overlapping, `WINDOW_STEPS` apart) and
    the index of the track each window belongs to."""
    windows = [cut_windows(t, WINDOW_POINTS, WINDOW_STEPS) for t in tracks]
    owner = np.concatenate([np.full(len(w), i) for i, w in enumerate(windows)])
    return featurize(np.concatenate(windows), stats), owner


def load_split(data_dir: Path, split: str) -> SequenceSet:
    """One built split (`train`, `val`, `test`, `unusual` or `incident`) as a SequenceSet (x [N, 32, 13] float32)."""
    if split not in (*SPLITS, "unusual", "incident"):
        raise MemgruError(f"unknown trajectory split {split!r}; choose train, val, test, unusual or incident")
    return SequenceSet.load(Path(data_dir) / split)


def load_points(data_dir: Path, split: str) -> np.ndarray:
    """The raw windows [N, 33, 7] (POINT_COLUMNS) of a built split, row-aligned with `load_split`."""
    path = Path(data_dir) / f"{split}_points.npz"
    if not path.is_file():
        raise MemgruError(f"no trajectory points at {path}; build the data first")
    return load_arrays(path, ("points",), "trajectory points")["points"]


def load_feature_stats(data_dir: Path) -> dict:
    """The train-only standardisation statistics written by `build_dataset`."""
    path = Path(data_dir) / "feature_stats.json"
    if not path.is_file():
        raise MemgruError(f"no feature statistics at {path}; build the data first")
    return json.loads(path.read_text())



# ------------------------------------------------------------------------------------- user input

USER_COLUMNS = {
    "timestamp": "seconds (epoch or from any origin) or ISO 8601 date-time (UTC unless it says otherwise)",
    "latitude": "deg, WGS84, -90..90",
    "longitude": "deg, WGS84, -180..180",
    "altitude": "barometric altitude, ft",
    "groundspeed": "optional, kt",
    "track": "optional, deg clockwise from true north",
    "vertical_rate": "optional, ft/min",
}
"""Columns of a user track file (CSV, or JSON records as in the `traffic` sample files) and their units."""
REQUIRED_COLUMNS = ("timestamp", "latitude", "longitude", "altitude")
OPTIONAL_COLUMNS = ("groundspeed", "track", "vertical_rate")
_ALIASES = {"time": "timestamp", "t": "timestamp", "lat": "latitude", "lon": "longitude", "lng": "longitude",
            "alt": "altitude", "gs": "groundspeed", "heading": "track", "vrate": "vertical_rate"}


def _read_text(path: Path) -> str:
    """The file's text, refusing oversized, compressed-bomb and binary files before any parsing."""
    raw = read_user_file(path, MAX_USER_FILE_BYTES, "track")
    if raw[:2] == b"\x1f\x8b":
        try:
            with gzip.GzipFile(fileobj=io.BytesIO(raw)) as gz:
                raw = gz.read(MAX_USER_FILE_BYTES + 1)
        except (OSError, EOFError) as err:
            raise MemgruError(f"{path.name} is not a readable gzip file ({err})") from err
        if len(raw) > MAX_USER_FILE_BYTES:
            raise MemgruError(f"{path.name} unpacks to more than {MAX_USER_FILE_BYTES // 2**20} MB")
    return decode_text(raw, path.name, "a CSV or JSON track")


def _parse_table(text: str, name: str) -> pd.DataFrame:
    """A CSV or JSON (records or columns) track as a DataFrame with normalised column names.

    Column names are lower-cased and short names mapped to ours (`_ALIASES`); an alias whose target is also
    a column is left out (a `heading` next to a `track` is the aircraft's heading, not its course), and two
    columns for one field (`lon` and `lng`) are refused.
    """
    stripped = text.lstrip()
    try:
        is_json = stripped[:1] in "[{"
        df = pd.read_json(io.StringIO(text), dtype=False) if is_json else pd.read_csv(io.StringIO(text))
    except (ValueError, pd.errors.ParserError) as err:
        kind = "JSON" if is_json else "CSV"
        raise MemgruError(f"{name} is not a valid {kind} track file ({str(err).splitlines()[0]})") from err
    names = [str(c).strip().lower() for c in df.columns]
    keep, columns = [], []
    for i, column in enumerate(names):
        target = _ALIASES.get(column, column)
        if target != column and target in names:  # e.g. `heading` next to `track`: the alias means something else
            continue
        if target in columns:
            both = ", ".join(c for c in names if _ALIASES.get(c, c) == target)
            raise MemgruError(f"{name} has two columns for {target} ({both}); keep one")
        keep.append(i)
        columns.append(target)
    df = df.iloc[:, keep].set_axis(columns, axis=1)
    missing = [c for c in REQUIRED_COLUMNS if c not in df.columns]
    if missing:
        raise MemgruError(f"{name} lacks the column(s) {', '.join(missing)}; a track needs "
                          f"{', '.join(REQUIRED_COLUMNS)} (optional: {', '.join(OPTIONAL_COLUMNS)})")
    return df


def _time_seconds(ts: pd.Series, name: str) -> np.ndarray:
    """Timestamps as float seconds: numbers are seconds, epoch-millisecond integers are recognised."""
    num = pd.to_numeric(ts, errors="coerce")
    if num.isna().any() and pd.api.types.is_numeric_dtype(ts):  # numbers with holes: not date-times either
        row = int(np.flatnonzero(num.isna().to_numpy())[0])
        raise MemgruError(f"{name}: timestamp is missing or unreadable in data row {row + 1}")
    if num.notna().all():
        t = num.to_numpy(float)
        if len(t) > 1 and np.nanmin(np.abs(t)) > 1e11:
            t = t / 1000.0
        return t
    try:
        parsed = pd.to_datetime(ts, utc=True, format="mixed")
    except (ValueError, TypeError) as err:
        raise MemgruError(f"{name}: timestamp must be seconds or ISO 8601 date-times ({err})") from err
    if parsed.isna().any():
        row = int(np.flatnonzero(parsed.isna().to_numpy())[0])
        raise MemgruError(f"{name}: timestamp is missing or unreadable in data row {row + 1}")
    return (parsed - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds().to_numpy(float)


def _looks_like_metres(df: pd.DataFrame) -> bool:
    """Heuristic: True when the altitude column is probably in metres rather than feet.

    1. With a vertical rate (ft/min) and at least 1,000 units of altitude change: the altitude
       change is compared with the integrated vertical rate; a ratio of 0.2-0.45 (metres: 0.3048)
       means metres.
    2. Otherwise, a median groundspeed (reported, or derived from positions) above 350 kt, which
       only jets in cruise fly, at a median "altitude" of 6,000-14,000 means metres (jets cruise at
       9,000-12,500 m, i.e. FL300-FL410).
    """
    both = df.dropna(subset=["altitude", "vertical_rate"]) if "vertical_rate" in df else df.iloc[:0]
    t, alt = both["time_s"].to_numpy(float), both["altitude"].to_numpy(float)
    if len(both) >= 2 and np.ptp(alt) >= 1000.0:
        vr = both["vertical_rate"].to_numpy(float)
        climbed = np.concatenate([[0.0], np.cumsum(0.5 * (vr[1:] + vr[:-1]) * np.diff(t) / 60.0)])
        if np.ptp(climbed) >= 1000.0:
            ratio = np.polyfit(climbed, alt - alt[0], 1)[0]
            return bool(0.2 <= ratio <= 0.45)
    if "groundspeed" in df:
        gs = float(np.nanmedian(df["groundspeed"]))
    else:
        placed = df.dropna(subset=["latitude", "longitude"])
        if len(placed) < 2:
            return False
        pts = np.zeros((len(placed), len(POINT_COLUMNS)))
        pts[:, T], pts[:, LAT], pts[:, LON] = placed["time_s"], placed["latitude"], placed["longitude"]
        enu = to_enu(pts)
        gs = float(np.median(np.hypot(*np.diff(enu, axis=0).T) / np.diff(pts[:, T]) / KT))
    return bool(gs > 350.0 and 6000.0 <= float(np.nanmedian(df["altitude"])) <= 14000.0)


def read_track_file(path: Path, *, allow_missing: bool = False) -> tuple[pd.DataFrame, dict]:
    """Read and validate one user track file; return its reports (POINT_COLUMNS, `time_s` in s) and info.

    Accepts CSV and JSON (records as in the `traffic` sample files, optionally .gz) with the
    columns of `USER_COLUMNS` (units there). Raises MemgruError, naming the problem, for a file
    over `MAX_USER_FILE_BYTES` (checked before parsing), binary content, missing columns, NaN or
    unreadable values, times that are not finite or span more than `MAX_TRACK_SPAN_S`, duplicate or
    decreasing times, impossible coordinates or values, altitude that is probably in metres
    (`_looks_like_metres`), and several aircraft in one file.
    Optional columns that are absent (or entirely empty) are listed in `info["derived_fields"]`;
    they are later derived from the positions.

    With `allow_missing`, empty cells are accepted (ADS-B sends position and velocity in separate
    messages, so OpenSky state vectors and the `traffic` samples have rows that carry only some
    fields): they stay NaN, and resampling interpolates each field from the rows that carry it, over
    gaps of at most `MAX_GAP_S`, as for the training data. Text that is not a number is still refused,
    and so is a field with no value at all. `info["missing_cells"]` counts the empty cells per field.
    """
    path = Path(path)
    df = _parse_table(_read_text(path), path.name)
    name = path.name
    if "icao24" in df and df["icao24"].nunique() > 1:
        raise MemgruError(f"{name} holds {df['icao24'].nunique()} aircraft (icao24); give one track per file")
    if len(df) < 2:
        raise MemgruError(f"{name} holds {len(df)} report(s); a track needs at least {WINDOW_POINTS} "
                          f"points {STEP_S:.0f} s apart")
    out = pd.DataFrame({"time_s": _time_seconds(df["timestamp"], name)})
    t = out["time_s"].to_numpy()
    unusable = ~(np.abs(t) <= MAX_TIME_S)  # also catches NaN and inf
    if unusable.any():
        row = int(np.flatnonzero(unusable)[0])
        raise MemgruError(f"{name}: timestamp {t[row]:g} in data row {row + 1} is not a usable time; give seconds "
                          f"(within ±{MAX_TIME_S:g}) or ISO 8601 date-times")
    present = [c for c in OPTIONAL_COLUMNS if c in df and df[c].notna().any()]
    missing_cells = {}
    for col in (*REQUIRED_COLUMNS[1:], *present):
        values = pd.to_numeric(df[col], errors="coerce")
        empty = df[col].isna().to_numpy()
        bad = values.isna().to_numpy() & ~(empty if allow_missing else False)
        if bad.any():
            row = int(np.flatnonzero(bad)[0])
            hint = "" if allow_missing or (bad & ~empty).any() else \
                ("; if rows carry only some fields (ADS-B messages), allow missing values to interpolate them "
                 "(predict --allow-missing; dashboard: tick 'Rows may leave fields empty')")
            raise MemgruError(f"{name}: column {col} is empty or not a number in data row {row + 1} "
                              f"({int(bad.sum())} row(s) in all){hint}")
        if empty.all():
            raise MemgruError(f"{name}: column {col} has no value at all")
        if empty.any():
            missing_cells[col] = int(empty.sum())
        out[col] = values.to_numpy(float)
    dt = np.diff(t)
    if (dt <= 0).any():
        row = int(np.flatnonzero(dt <= 0)[0]) + 2
        what = "repeats" if dt[row - 2] == 0 else f"goes back by {-dt[row - 2]:g} s"
        hint = "" if dt[row - 2] == 0 else (" (sort the rows by time if they are out of order; give each recording "
                                            "its own file if the file joins several)")
        raise MemgruError(f"{name}: the timestamp {what} at data row {row}; timestamps must increase strictly{hint}")
    if t[-1] - t[0] > MAX_TRACK_SPAN_S:
        raise MemgruError(f"{name} spans {(t[-1] - t[0]) / 86400:,.1f} days, over the {MAX_TRACK_SPAN_S / 86400:g}-day "
                          "limit; give one flight per file")
    checks = {"latitude": (-90.0, 90.0, "deg"), "longitude": (-180.0, 180.0, "deg"),
              "altitude": (-2000.0, 100_000.0, "ft"), "groundspeed": (0.0, 1500.0, "kt"),
              "vertical_rate": (-30_000.0, 30_000.0, "ft/min")}
    for col, (lo, hi, unit) in checks.items():
        if col in out:
            v = out[col].to_numpy()
            bad = (v < lo) | (v > hi)
            if bad.any():
                row = int(np.flatnonzero(bad)[0])
                raise MemgruError(f"{name}: impossible {col} {v[row]:g} {unit} in data row {row + 1} "
                                  f"(must be within {lo:g}..{hi:g})")
    if "track" in out:
        out["track"] %= 360.0
    if _looks_like_metres(out):
        raise MemgruError(f"{name}: altitude looks like metres (it matches the vertical rate or cruise "
                          f"speed only in metres); give barometric altitude in feet")
    info = {"file": name, "n_reports": len(out), "duration_s": float(out["time_s"].iloc[-1] - out["time_s"].iloc[0]),
            "derived_fields": [c for c in OPTIONAL_COLUMNS if c not in present], "missing_cells": missing_cells,
            "icao24": str(df["icao24"].iloc[0]) if "icao24" in df else None,
            "callsign": str(df["callsign"].iloc[0]) if "callsign" in df else None}
    return out, info


def track_to_windows(reports: pd.DataFrame, *, stride: int = 8) -> tuple[np.ndarray, dict]:
    """Clean and resample validated reports like the training data; cut windows [W, 33, 7].

    Missing reported fields are derived from positions per segment (`derive_reported`). Windows
    start every `stride` steps in each gap-free segment. Raises MemgruError when no complete
    window results.
    """
    frame = reports.copy()
    derived = [c for c in OPTIONAL_COLUMNS if c not in frame]
    for col in derived:
        frame[col] = np.nan
    cleaned = clean_track(frame, min_altitude_ft=MIN_ALTITUDE_FT)
    required = tuple(c for c in POINT_COLUMNS[1:] if c not in derived)
    segments = resample_track(cleaned, step_s=STEP_S, max_gap_s=MAX_GAP_S, required=required)
    windows = []
    for seg in segments:
        if len(seg) < WINDOW_POINTS:  # too short for a window (and for derivatives, at one point)
            continue
        seg = derive_reported(seg) if derived else seg
        windows.append(cut_windows(seg, WINDOW_POINTS, stride))
    usable = sum(len(s) for s in segments)
    if not windows or sum(len(w) for w in windows) == 0:
        raise MemgruError(
            f"too few usable points: a track needs {WINDOW_POINTS} points {STEP_S:.0f} s apart "
            f"({WINDOW_STEPS * STEP_S:.0f} s) above {MIN_ALTITUDE_FT:.0f} ft without gaps over "
            f"{MAX_GAP_S:.0f} s; this one gives {max((len(s) for s in segments), default=0)} in its longest piece")
    w = np.concatenate(windows)
    info = {"step_s": STEP_S, "n_windows": len(w), "usable_points": usable, "segments": len(segments),
            "window_start_s": w[:, 0, T].tolist(), "dropped_reports": len(reports) - len(cleaned)}
    return w, info


def read_user_track(path: Path, stats: dict, *, stride: int = 8,
                    allow_missing: bool = False) -> tuple[np.ndarray, dict]:
    """Model-ready windows float32 [W, 32, 13] of a user track file, and what to report about it.

    `stats` are the training feature statistics (`feature_stats.json`, stored with the model);
    `allow_missing` goes to `read_track_file` (empty cells interpolated, counted in `missing_cells`).
    The info dict holds the file name, report count, duration (s), `derived_fields` (reported
    fields absent from the file and derived from positions: then the reported-vs-derived
    consistency features say nothing and a verdict rests on the motion alone), icao24/callsign
    when given, segment and window counts and each window's start time (s).
    """
    reports, info = read_track_file(path, allow_missing=allow_missing)
    windows, winfo = track_to_windows(reports, stride=stride)
    return featurize(windows, stats), info | winfo


# ---------------------------------------------------------------------------------------- samples


def _points_to_frame(points: np.ndarray) -> pd.DataFrame:
    """A track [P, 7] as a user-format table (ISO UTC timestamps, rounded like ADS-B data)."""
    df = pd.DataFrame(points[:, 1:], columns=POINT_COLUMNS[1:])
    df.insert(0, "timestamp", pd.to_datetime(points[:, T], unit="s", utc=True).strftime("%Y-%m-%dT%H:%M:%SZ"))
    return df.round({"latitude": 6, "longitude": 6, "altitude": 0, "groundspeed": 1, "track": 2,
                     "vertical_rate": 0})


def build_samples(asset_dir: Path, *, cache_dir: Path, seed: int = 0, n_real: int = 3,
                  magnitude: float = 0.6, points: int = 2 * WINDOW_STEPS + 1) -> pd.DataFrame:
    """Write small sample tracks (CSV) of the held-out test collection and a manifest `samples.csv`.

    `n_real` real Swiss flights' first `points` clean points (10 s), one fake of each family
    with knob `magnitude`, derived from other Swiss flights only, and, when the wheel holds
    `INCIDENT_FLIGHT`, its GNSS-interfered stretch (`incident_sample`: a real false track, magnitude
    empty). Returns the manifest (columns file, truth, family, magnitude, source).
    """
    asset_dir = Path(asset_dir)
    asset_dir.mkdir(parents=True, exist_ok=True)
    rng = np.random.default_rng(seed)
    with zipfile.ZipFile(find_traffic_wheel(cache_dir)) as archive:
        df = read_collection(archive, TEST_COLLECTION)
        incident = _read_if_present(archive, INCIDENT_FLIGHT)
    tracks, ids = [], []
    for icao, g in df.groupby("icao24", sort=True):
        cleaned = drop_filled_gaps(clean_track(g, min_altitude_ft=MIN_ALTITUDE_FT), max_gap_s=MAX_GAP_S)
        for seg in resample_track(cleaned, step_s=STEP_S, max_gap_s=MAX_GAP_S):
            if len(seg) >= points and check_window_physics(seg[None, :points])[0]:
                tracks.append(seg[:points])
                ids.append(icao)
                break
    order = rng.permutation(len(tracks))
    pool = np.stack([tracks[i] for i in order])
    pool_ids = [ids[i] for i in order]
    rows = []
    for i in range(n_real):
        name = f"real_{i + 1}_{pool_ids[i]}.csv"
        _points_to_frame(pool[i]).to_csv(asset_dir / name, index=False)
        rows.append({"file": name, "truth": "real", "family": "real", "magnitude": 0.0, "source": pool_ids[i]})
    for k, family in enumerate(FAMILIES):
        base = n_real + k

        def pick_other(base: int = base) -> np.ndarray:
            return pool[(base + len(FAMILIES)) % len(pool)]

        fake = make_fake(pool[base], family, magnitude, rng, pick_other)
        name = f"false_{family}.csv"
        _points_to_frame(fake).to_csv(asset_dir / name, index=False)
        rows.append({"file": name, "truth": "false", "family": family, "magnitude": magnitude,
                     "source": pool_ids[base]})
    if incident is not None:
        points = incident_sample(incident)
        source = str(incident["icao24"].iloc[0])
        name = f"false_gnss_interference_{source}.csv"
        _points_to_frame(points).to_csv(asset_dir / name, index=False)
        rows.append({"file": name, "truth": "false", "family": "gnss_interference", "magnitude": np.nan,
                     "source": source})
    manifest = pd.DataFrame(rows)
    manifest.to_csv(asset_dir / "samples.csv", index=False)
    return manifest


def incident_sample(reports: pd.DataFrame) -> np.ndarray:
    """The longest gap-free 10-s piece [P, 7] of a flight's longest `interfered` stretch (`label_incident`)."""
    df, kind = _labelled_reports(reports)
    runs = true_runs(kind == "interfered")
    if not runs:
        raise MemgruError("the incident flight has no interfered stretch")
    a, b = max(runs, key=lambda run: run[1] - run[0])
    cleaned = clean_track(df.iloc[a:b], min_altitude_ft=MIN_ALTITUDE_FT)
    segments = resample_track(cleaned, step_s=STEP_S, max_gap_s=MAX_GAP_S)
    if not segments:
        raise MemgruError("the incident flight's interfered stretch has no gap-free piece")
    return max(segments, key=len)
