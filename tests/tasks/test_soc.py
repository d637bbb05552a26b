"""SOC task: user CSV validation, coulomb counting, windows, and a tiny PyBaMM-built data set."""

from __future__ import annotations

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from memgru.errors import MemgruError
from memgru.tasks import soc
from memgru.tasks.soc_csv import current_sign_slope, read_soc_csv, write_soc_csv
from memgru.tasks.soc_sim import CAPACITY_AH, SAFETY_UPPER_V, SimSpec, cycle_shape, dst_profile, simulate

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "soc"


def synthetic_trace(n: int = 600, seed: int = 0) -> pd.DataFrame:
    """A plausible 1 Hz discharge: square-wave current, V = OCV(SOC) - R I, SOC by coulomb counting."""
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=np.float64)
    current = np.where((t // 30) % 2 == 0, 5.0, -1.0) + 0.01 * rng.standard_normal(n)
    soc_true = soc.coulomb_count(current, capacity_ah=1.0)
    voltage = 3.4 + 0.8 * soc_true - 0.03 * current
    return pd.DataFrame(
        {
            "time_s": t,
            "current_a": current,
            "voltage_v": voltage,
            "temperature_c": 25.0 + 0.01 * t,
            "soc": soc_true,
        }
    )


def write_csv(path: Path, frame: pd.DataFrame) -> Path:
    frame.to_csv(path, index=False)
    return path


# ---------------------------------------------------------------- user CSV: accepted files


def test_round_trip_of_written_trace(tmp_path):
    frame = synthetic_trace()
    path = tmp_path / "trace.csv"
    write_soc_csv(path, frame)
    record = read_soc_csv(path)
    assert record.notes == []
    assert list(record.frame.columns) == ["time_s", "current_a", "voltage_v", "temperature_c", "soc"]
    np.testing.assert_allclose(record.frame["voltage_v"], frame["voltage_v"], atol=5e-5)
    np.testing.assert_allclose(record.frame["current_a"], frame["current_a"], atol=5e-4)
    np.testing.assert_allclose(record.soc, frame["soc"], atol=1e-5)  # percent on disk, fraction in memory
    assert record.soc.dtype == np.float32


def test_soc_as_fraction_is_detected_and_column_names_are_case_insensitive(tmp_path):
    frame = synthetic_trace().rename(columns={"time_s": "Time_S", "voltage_v": " VOLTAGE_V"})
    record = read_soc_csv(write_csv(tmp_path / "f.csv", frame))
    np.testing.assert_allclose(record.soc, frame["soc"], rtol=1e-6)
    assert any("fraction" in note for note in record.notes)


def test_irregular_time_is_resampled_to_1hz(tmp_path):
    frame = synthetic_trace()
    rng = np.random.default_rng(1)
    jittered = frame.assign(time_s=frame["time_s"] * 1.5 + rng.uniform(0, 0.3, len(frame)))
    jittered["soc"] *= 100
    record = read_soc_csv(write_csv(tmp_path / "j.csv", jittered))
    times = record.frame["time_s"].to_numpy()
    np.testing.assert_allclose(np.diff(times), 1.0)
    assert times[0] == jittered["time_s"].iloc[0]
    assert len(times) == int(np.floor(jittered["time_s"].iloc[-1] - jittered["time_s"].iloc[0])) + 1
    assert any("resampled" in note for note in record.notes)


# ---------------------------------------------------------------- user CSV: rejected files


def _bad(frame: pd.DataFrame, **changes) -> pd.DataFrame:
    frame = frame.copy()
    for column, value in changes.items():
        frame[column] = value
    return frame


BASE = synthetic_trace()
BAD_FRAMES = {
    "missing": (BASE.drop(columns=["temperature_c"]), "missing column(s) temperature_c"),
    "nan": (_bad(BASE, voltage_v=BASE["voltage_v"].where(BASE.index != 7)), "voltage_v has a missing, NaN"),
    "inf": (_bad(BASE, current_a=BASE["current_a"].where(BASE.index != 3, np.inf)), "line 5"),
    "text": (
        _bad(BASE, temperature_c=BASE["temperature_c"].astype(object).where(BASE.index != 2, "hot")),
        "'hot'",
    ),
    "decreasing": (_bad(BASE, time_s=BASE["time_s"].where(BASE.index != 10, 3.0)), "not strictly increasing"),
    "duplicate": (_bad(BASE, time_s=BASE["time_s"].where(BASE.index != 10, 9.0)), "not strictly increasing"),
    "gap": (_bad(BASE, time_s=BASE["time_s"] + 30.0 * (BASE.index >= 100)), "time gap of 31 s"),
    "milliseconds": (_bad(BASE, time_s=BASE["time_s"] * 1000), "milliseconds"),
    "milliamps": (_bad(BASE, current_a=BASE["current_a"] * 1000), "milliamps"),
    "millivolts": (_bad(BASE, voltage_v=BASE["voltage_v"] * 1000), "millivolts"),
    "kelvin": (_bad(BASE, temperature_c=BASE["temperature_c"] + 273.15), "kelvin"),
    "pack": (_bad(BASE, voltage_v=BASE["voltage_v"] * 96), "packs are not supported"),
    "unit_column": (BASE.rename(columns={"current_a": "current_ma"}), "divide milliamps by 1000"),
    "short": (BASE.iloc[:30], "need at least 60 s"),
    "inverted_current": (_bad(BASE, current_a=-BASE["current_a"]), "sign looks inverted"),
    "soc_percent_range": (_bad(BASE, soc=BASE["soc"] * 100 + 50), "outside 0..100 percent"),
}


@pytest.mark.parametrize("case", sorted(BAD_FRAMES))
def test_bad_frames_give_one_clear_error(tmp_path, case):
    frame, message = BAD_FRAMES[case]
    with pytest.raises(MemgruError, match=re.escape(message)) as info:
        read_soc_csv(write_csv(tmp_path / f"{case}.csv", frame))
    assert "\n" not in str(info.value)


def test_soc_that_contradicts_the_current_sign_is_rejected(tmp_path):
    # No current steps (constant charge current), so only the soc column can reveal the sign error.
    n = 3600
    frame = pd.DataFrame(
        {
            "time_s": np.arange(n),
            "current_a": np.full(n, -2.0),
            "voltage_v": np.linspace(4.1, 3.5, n),
            "temperature_c": 25.0,
            "soc": 100 * soc.coulomb_count(np.full(n, 2.0), capacity_ah=5.0),
        }
    )
    with pytest.raises(MemgruError, match="soc falls while the net current_a says the opposite"):
        read_soc_csv(write_csv(tmp_path / "sign.csv", frame))


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "is empty"),
        (b"time_s,current_a,voltage_v,temperature_c\n", "no data rows"),
        (b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + bytes(range(256)), "is a binary file"),
        ("time_s,current_a\n0,1\n".encode("utf-16"), "is a binary file"),
        (b"time_s,current_a,voltage_v,temperature_c\n0,1,3.7,\xff\xfe25\n", "not UTF-8 text"),
        (b'time_s,current_a,voltage_v,temperature_c\n0,1,"3.7,25\n', "not a well-formed CSV"),
    ],
)
def test_bad_bytes_give_one_clear_error(tmp_path, content, message):
    path = tmp_path / "bad.csv"
    path.write_bytes(content)
    with pytest.raises(MemgruError, match=message):
        read_soc_csv(path)


def test_size_limit_is_checked_before_reading(tmp_path, monkeypatch):
    path = write_csv(tmp_path / "big.csv", BASE)
    monkeypatch.setattr(Path, "read_bytes", lambda self: pytest.fail("file was read despite the size limit"))
    with pytest.raises(MemgruError, match="over the 0 MiB limit"):
        read_soc_csv(path, max_bytes=100)


def test_missing_file(tmp_path):
    with pytest.raises(MemgruError, match="file not found"):
        read_soc_csv(tmp_path / "nope.csv")


# ---------------------------------------------------------------- coulomb counting, windows, metrics


def test_coulomb_count_constant_current():
    soc_trace = soc.coulomb_count(np.full(3601, 5.0), dt_s=1.0, capacity_ah=5.0)
    np.testing.assert_allclose(soc_trace[[0, 720, 1800, 3600]], [1.0, 0.8, 0.5, 0.0], atol=1e-12)
    charging = soc.coulomb_count(np.full(361, -2.5), dt_s=2.0, capacity_ah=5.0, soc0=0.2)
    assert charging[-1] == pytest.approx(0.2 + 2.5 * 720 / 3600 / 5.0)


def test_coulomb_count_is_exact_for_linear_current():
    current = np.linspace(0.0, 10.0, 101)  # ramp over 100 s: 500 A s
    assert soc.coulomb_count(current, capacity_ah=1.0)[-1] == pytest.approx(1.0 - 500.0 / 3600.0)


def test_windows_cover_the_end_and_align_with_targets():
    features = np.arange(1050 * 3, dtype=np.float32).reshape(1050, 3)
    target = np.linspace(1, 0, 1050)
    x, y, starts = soc.make_windows(features, target, window=300, stride=100)
    np.testing.assert_array_equal(starts, [0, 100, 200, 300, 400, 500, 600, 700, 750])
    assert x.shape == (9, 300, 3) and y.shape == (9, 300) and x.dtype == y.dtype == np.float32
    np.testing.assert_array_equal(x[-1, -1], features[-1])
    np.testing.assert_allclose(y[3], target[300:600], rtol=1e-6)
    assert soc.window_starts(299, 300, 100).size == 0


def test_head_stride_adds_window_starts_near_full_charge_only():
    np.testing.assert_array_equal(soc.window_starts(1050, 300, 100, head_stride=25), [0, 25, 50, 75, 100, 200, 300,
                                                                                       400, 500, 600, 700, 750])
    # a trace barely longer than one window: the head starts never run past the end-flush window
    np.testing.assert_array_equal(soc.window_starts(340, 300, 100, head_stride=25), [0, 25, 40])
    np.testing.assert_array_equal(soc.window_starts(300, 300, 100, head_stride=25), [0])
    with pytest.raises(MemgruError, match="must be positive"):
        soc.window_starts(1050, 300, 100, head_stride=0)


def test_featurise_standardises_and_checks_stats():
    frame = synthetic_trace()
    stats = {"features": list(soc.FEATURES), "mean": [3.8, 2.0, 25.0], "std": [0.1, 3.0, 2.0]}
    x = soc.featurise(frame, stats)
    assert x.shape == (len(frame), 3) and x.dtype == np.float32
    np.testing.assert_allclose(x[:, 1], (frame["current_a"] - 2.0) / 3.0, rtol=1e-5)
    with pytest.raises(MemgruError, match="normalisation stats"):
        soc.featurise(frame, {**stats, "features": ["current_a", "voltage_v", "temperature_c"]})


def test_soc_errors_in_percentage_points():
    errors = soc.soc_errors(np.array([0.5, 0.52, 0.47]), np.array([0.5, 0.5, 0.5]))
    assert errors["rmse_pct"] == pytest.approx(np.sqrt((0 + 4 + 9) / 3))
    assert errors["mae_pct"] == pytest.approx(5 / 3)
    assert errors["max_abs_pct"] == pytest.approx(3.0)


def test_dst_profile_is_the_usabc_schedule():
    shape = dst_profile()
    assert shape.shape == (360,) and shape.max() == 1.0 and shape.min() == -0.5
    assert shape.mean() == pytest.approx(0.125)  # net 12.5 % of peak power over a cycle
    np.testing.assert_allclose(cycle_shape("DST"), shape)
    with pytest.raises(MemgruError, match="unknown drive cycle"):
        cycle_shape("NEDC")


# ---------------------------------------------------------------- PyBaMM simulation and the built data set

TINY = {
    "train_cycles": ("US06", "DST"),
    "train_temperatures_c": (10.0,),
    "test_temperatures_c": (25.0,),
    "max_duration_s": 90,
    "train_peak_c_rates": (2.0,),
}


@pytest.fixture(scope="module")
def tiny_data(tmp_path_factory):
    """A 3-recording, 91 s-per-recording data set: FUDS 25 °C test, US06 10 °C train, DST 10 °C val."""
    out = tmp_path_factory.mktemp("soc")
    summary = soc.build_dataset(out, seed=0, window_s=30, stride_s=20, eval_window_s=None, **TINY)
    return out, summary


def test_tiny_simulation_is_physical(tiny_data):
    out, _ = tiny_data
    cached = sorted((out / "sim").glob("UDDS_25C_*.npz"))
    assert len(cached) == 1
    with np.load(cached[0]) as data:
        record = pd.DataFrame({name: data[name] for name in data.files})
    assert len(record) == 91
    v = record["voltage_v"].to_numpy()
    assert v.min() > 3.5 and v.max() < SAFETY_UPPER_V  # a fresh, fully charged cell stays well above cut-off
    assert v[0] == pytest.approx(4.2, abs=0.02)
    expected_current = cycle_shape("UDDS")[:91] * soc.PEAK_C_RATE * CAPACITY_AH
    np.testing.assert_allclose(record["current_a"], expected_current, atol=1e-6)
    truth = soc.coulomb_count(record["current_a"].to_numpy())
    assert truth[-1] < truth[0] and v[-1] < v[0]  # net discharge lowers SOC and voltage
    assert current_sign_slope(record["current_a"].to_numpy(), v) < 0  # + current = discharge: ohmic drop
    assert record["temperature_c"].iloc[-1] > 25.0  # joule heating of a discharging cell


def test_simulation_rejects_unknown_cycle():
    with pytest.raises(MemgruError, match="unknown drive cycle"):
        simulate(SimSpec("NEDC", 25.0, max_duration_s=10))


def test_splits_follow_the_protocol(tiny_data):
    out, summary = tiny_data
    train, val, test = (soc.load_split(out, s) for s in ("train", "val", "test"))
    assert list(test.meta.columns) == ["recording", "cycle", "ambient_c", "peak_c_rate", "start_s"]
    assert set(test.meta["peak_c_rate"]) == {soc.PEAK_C_RATE}
    assert set(test.meta["recording"]) == {"FUDS_25C"} and set(test.meta["ambient_c"]) == {25.0}
    assert set(val.meta["recording"]) == {"DST_10C"}
    assert set(train.meta["recording"]) == {"US06_10C"}
    starts = [0, 20, 40, 60, 61]  # 91 samples, 30 s windows, 20 s stride, one flush with the end
    assert len(test) == len(starts) and list(test.meta["start_s"]) == starts
    assert train.x.shape == (len(starts), 30, 3) and train.x.dtype == np.float32
    assert train.y.shape == (len(starts), 30) and train.y.min() > 0.9 and train.y.max() <= 1.0
    assert summary["counts"]["train"] == {"windows": 5, "recordings": 1, "samples": 91}
    with pytest.raises(MemgruError, match="unknown split"):
        soc.load_split(out, "dev")


def test_training_cycles_run_at_every_peak_rate(tiny_data, tmp_path):
    """Each training/validation cycle is simulated once per peak C-rate (own name, own noise, scaled
    current); the test cycle only at the test rate."""
    out, _ = tiny_data
    shutil.copytree(out / "sim", tmp_path / "sim")
    summary = soc.build_dataset(tmp_path, seed=0, window_s=30, stride_s=20, eval_window_s=None,
                                **{**TINY, "train_peak_c_rates": (2.0, 1.0)})
    assert summary["simulations_run"] == 2  # the two 1C recordings; the 2C ones come from the cache
    train, val, test = (soc.load_split(tmp_path, s) for s in ("train", "val", "test"))
    assert set(train.meta["recording"]) == {"US06_10C", "US06_10C_1Cpeak"}
    assert set(val.meta["recording"]) == {"DST_10C", "DST_10C_1Cpeak"}
    assert set(test.meta["recording"]) == {"FUDS_25C"} and set(test.meta["peak_c_rate"]) == {2.0}
    assert set(train.meta["peak_c_rate"]) == {1.0, 2.0}
    assert summary["parameters"]["val_recordings"] == ["DST_10C", "DST_10C_1Cpeak"]
    hard, gentle = (soc.load_trace(tmp_path, "US06", 10.0).frame, soc.load_trace(tmp_path, "US06", 10.0, 1.0).frame)
    ratio = gentle["current_a"].abs().sum() / hard["current_a"].abs().sum()
    assert ratio == pytest.approx(0.5, abs=0.02)
    assert not np.allclose(gentle["voltage_v"], hard["voltage_v"])
    with pytest.raises(MemgruError, match="peak C-rates must be positive"):
        soc.build_dataset(tmp_path, **{**TINY, "train_peak_c_rates": (0.0,)})


def test_validation_and_test_windows_are_longer(tiny_data, tmp_path):
    """The protocol's long evaluation windows: every eval_window_s, plus one flush with the end;
    training windows keep their own length and stride."""
    out, _ = tiny_data
    shutil.copytree(out / "sim", tmp_path / "sim")
    summary = soc.build_dataset(tmp_path, seed=0, window_s=30, stride_s=20, eval_window_s=40, **TINY)
    assert summary["simulations_run"] == 0 and summary["parameters"]["eval_window_s"] == 40
    train, val, test = (soc.load_split(tmp_path, s) for s in ("train", "val", "test"))
    assert train.x.shape == (5, 30, 3)
    for split in (val, test):
        assert split.x.shape == (3, 40, 3) and list(split.meta["start_s"]) == [0, 40, 51]
    assert soc.load_stats(tmp_path)["eval_window_s"] == 40


def test_stats_are_from_train_only_and_match_the_windows(tiny_data):
    out, _ = tiny_data
    stats = soc.load_stats(out)
    raw = soc.load_trace(out, "US06", 10.0).frame[list(soc.FEATURES)].to_numpy()
    np.testing.assert_allclose(stats["mean"], raw.mean(axis=0), rtol=1e-9)
    np.testing.assert_allclose(stats["std"], raw.std(axis=0), rtol=1e-9)
    fuds = soc.load_trace(out, "FUDS", 25.0)
    test = soc.load_split(out, "test")
    np.testing.assert_allclose(test.x[1], soc.featurise(fuds.frame, stats)[20:50], rtol=1e-6)
    np.testing.assert_allclose(test.y[1], fuds.soc[20:50], rtol=1e-6)


def test_user_input_of_a_built_trace(tiny_data):
    out, _ = tiny_data
    stats = soc.load_stats(out)
    user = soc.read_user_input(out / "traces" / "FUDS_25C.csv", stats)
    assert user.x.shape == (1, 91, 3) and user.x.dtype == np.float32
    np.testing.assert_allclose(user.record.soc[0], 1.0)
    assert user.record.notes == []


def test_build_is_deterministic_and_cached(tiny_data, tmp_path):
    out, first = tiny_data
    before = {p.name: p.read_bytes() for p in (out / "traces").glob("*.csv")}
    again = soc.build_dataset(out, seed=0, window_s=30, stride_s=20, eval_window_s=None, **TINY)
    assert again["simulations_cached"] == 3 and again["simulations_run"] == 0
    assert {p.name: p.read_bytes() for p in (out / "traces").glob("*.csv")} == before
    assert again["counts"] == first["counts"]

    other = tmp_path / "seed1"
    shutil.copytree(out / "sim", other / "sim")
    reseeded = soc.build_dataset(other, seed=1, window_s=30, stride_s=20, eval_window_s=None, **TINY)
    assert reseeded["simulations_run"] == 0
    a, b = soc.load_trace(out, "FUDS", 25.0).frame, soc.load_trace(other, "FUDS", 25.0).frame
    assert not np.allclose(a["voltage_v"], b["voltage_v"])  # new sensor noise
    np.testing.assert_array_equal(a["soc"], b["soc"])  # same truth
    assert np.std(a["voltage_v"] - b["voltage_v"]) == pytest.approx(np.sqrt(2) * 0.003, rel=0.3)


@pytest.mark.parametrize("ambient", [0, 25, 45])
def test_committed_fuds_samples_are_valid(ambient):
    record = read_soc_csv(ASSETS / f"FUDS_{ambient}C.csv")
    assert record.notes == []
    assert record.soc[0] == pytest.approx(1.0) and record.soc[-1] < 0.2
    assert record.frame["voltage_v"].min() < 2.6
    assert abs(float(record.frame["temperature_c"].iloc[0]) - ambient) < 2.0
