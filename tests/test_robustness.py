"""Hostile and unusual inputs through the whole CLI path (predict / evaluate / crossbar / train, in-process).

Every bad input must end in exit code 2 and exactly one line on stderr that names the problem, never a
traceback; good-but-unusual inputs (odd sample rates, stereo, very short or long clips, extra columns,
irregular sampling) must work. The file readers also get arbitrary and mutated bytes (Hypothesis): they may
only ever raise `MemgruError`, with a one-line message. The README's "Robustness" table lists these cases.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import shutil
import zipfile
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memgru.cli import main
from memgru.errors import MemgruError
from memgru.tasks.audio import LABELS
from memgru.tasks.common import SequenceSet
from memgru.tasks.io import task_io

REPO = Path(__file__).resolve().parents[1]
TRACK = REPO / "assets" / "trajectory" / "real_1_44aac1.csv"
"""A bundled real track: 65 reports 10 s apart, level in cruise at 31,000 ft and 467 kt."""
SOC_TRACE = REPO / "assets" / "soc" / "FUDS_25C.csv"
"""A bundled FUDS drive cycle at 1 Hz with its true SOC (the first 600 s are used: fast and still valid)."""

# A numeric or resource warning on these paths would be a second stderr line of the real CLI: fail on it.
pytestmark = pytest.mark.filterwarnings(
    "error::RuntimeWarning", "error::ResourceWarning", "error::pytest.PytestUnraisableExceptionWarning"
)


def cli(args: Sequence[str | Path], capsys: pytest.CaptureFixture[str]) -> tuple[int, str, str]:
    """Exit code, stdout and stderr of `python -m memgru ARGS`, run in-process."""
    try:
        code = main([str(a) for a in args])
    except SystemExit as exc:  # argparse usage errors
        code = exc.code
    out, err = capsys.readouterr()
    return code, out, err


def assert_refused(args: Sequence[str | Path], words: str, capsys: pytest.CaptureFixture[str]) -> None:
    """The command exits with 2, prints nothing on stdout and one stderr line containing `words`."""
    code, out, err = cli(args, capsys)
    assert code == 2, (code, err)
    assert out == "" and "Traceback" not in err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("memgru "), err
    assert words in lines[0], lines[0]


def predict_json(args: Sequence[str | Path], capsys: pytest.CaptureFixture[str]) -> dict:
    """The JSON document of a `predict ... --json` that must succeed."""
    code, out, err = cli(["predict", *args, "--json"], capsys)
    assert code == 0 and err == "", err
    return json.loads(out)


# ------------------------------------------------------------------------------------------ audio


def tone(seconds: float, rate: int = 22050, channels: int = 1) -> np.ndarray:
    """A 440 Hz tone [samples] or [samples, channels] (the second channel at half level)."""
    x = 0.4 * np.sin(2 * np.pi * 440 * np.arange(int(rate * seconds)) / rate).astype(np.float32)
    return x if channels == 1 else np.stack([x, 0.5 * x], axis=1)


def wav(path: Path, x: np.ndarray, rate: int = 22050, subtype: str = "PCM_16") -> Path:
    """Write `x` as a WAV file; returns its path."""
    sf.write(path, x, rate, format="WAV", subtype=subtype)
    return path


def with_bad_sample(value: float) -> np.ndarray:
    """A 1-s tone with one sample set to `value`."""
    x = tone(1.0)
    x[1000] = value
    return x


def corrupt_header(path: Path) -> Path:
    """A 1-s WAV whose format chunk is overwritten with 0xFF bytes."""
    data = bytearray(wav(path, tone(1.0)).read_bytes())
    data[20:36] = b"\xff" * 16  # the 'fmt ' chunk: format, channels, rate, byte rate, alignment, bits
    path.write_bytes(bytes(data))
    return path


def zipped_wav(path: Path) -> Path:
    """A zip archive holding a good WAV: a container memgru does not read."""
    inner = wav(path.with_name("inner.wav"), tone(1.0))
    with zipfile.ZipFile(path, "w") as archive:
        archive.write(inner, inner.name)
    return path


def written(data: bytes | str) -> Callable[[Path], Path]:
    """A builder writing fixed content to the path it is given."""
    def build(path: Path) -> Path:
        path.write_bytes(data.encode() if isinstance(data, str) else data)
        return path
    return build


BAD_AUDIO = [
    pytest.param("clip.wav", written(b""), "clip.wav is empty (0 bytes)", id="empty-file"),
    pytest.param("clip.wav", lambda p: wav(p, np.zeros(0, np.float32)), "contains no audio samples",
                 id="zero-length-wav"),
    pytest.param("clip.wav", corrupt_header, "is not readable audio (wav/flac/ogg/mp3 expected)", id="corrupt-header"),
    pytest.param("clip.wav", written("these are my notes, not a sound\n" * 20), "is not readable audio",
                 id="text-renamed-wav"),
    pytest.param("clip.wav", lambda p: wav(p, np.zeros(22050, np.float32)), "is silent (peak below -80 dBFS)",
                 id="all-silent"),
    pytest.param("clip.wav", lambda p: wav(p, with_bad_sample(np.nan), subtype="FLOAT"),
                 "contains NaN or infinite samples", id="nan-sample-float-wav"),
    pytest.param("clip.wav", lambda p: wav(p, with_bad_sample(np.inf), subtype="FLOAT"),
                 "contains NaN or infinite samples", id="inf-sample-float-wav"),
    pytest.param("clip.zip", zipped_wav, "clip.zip is not readable audio", id="zip-container"),
    pytest.param("clip.txt", written("hello\n"), "clip.txt is not readable audio", id="txt-file"),
]


@pytest.mark.parametrize("name, build, words", BAD_AUDIO)
def test_bad_audio_is_refused(name, build, words, tmp_path, capsys):
    path = build(tmp_path / name)
    assert_refused(["predict", "--task", "audio", path], words, capsys)


GOOD_AUDIO = [
    pytest.param(lambda p: wav(p, tone(2.0, 8000), 8000), 8000, 1, 2.0, 1, id="8kHz"),
    pytest.param(lambda p: wav(p, tone(2.0, 48000), 48000), 48000, 1, 2.0, 1, id="48kHz"),
    pytest.param(lambda p: wav(p, tone(2.0, channels=2)), 22050, 2, 2.0, 1, id="stereo"),
    pytest.param(lambda p: wav(p, tone(0.1)), 22050, 1, 0.1, 1, id="0.1s-clip"),
    pytest.param(lambda p: wav(p, tone(60.0)), 22050, 1, 60.0, 29, id="60s-clip"),  # windows every 2 s
]


@pytest.mark.parametrize("build, rate, channels, seconds, windows", GOOD_AUDIO)
def test_unusual_but_valid_audio_is_classified(build, rate, channels, seconds, windows, tmp_path, capsys):
    doc = predict_json(["--task", "audio", build(tmp_path / "clip.wav")], capsys)
    facts = doc["input"]
    assert (facts["sample_rate"], facts["channels"], doc["windows"]) == (rate, channels, windows)
    assert facts["duration_s"] == pytest.approx(seconds, abs=1e-3)
    assert doc["label"] in LABELS and sum(doc["probabilities"].values()) == pytest.approx(1.0, abs=1e-5)


# ------------------------------------------------------------------------------------- trajectory


def track() -> pd.DataFrame:
    return pd.read_csv(TRACK)


def track_file(change: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Path], Path]:
    """A builder writing the bundled track after `change` as CSV."""
    def build(path: Path) -> Path:
        change(track()).to_csv(path, index=False)
        return path
    return build


def sparse_file(size: int) -> Callable[[Path], Path]:
    """A builder of a sparse file of `size` bytes (nothing written, so it costs no disk or time)."""
    def build(path: Path) -> Path:
        with open(path, "wb") as fh:
            fh.truncate(size)
        return path
    return build


def replace_at(column: str, row: int, value: object) -> Callable[[pd.DataFrame], pd.DataFrame]:
    """A frame change setting one cell (data row `row`, counted from 0) to `value`."""
    return lambda d: d.assign(**{column: d[column].astype(object).where(d.index != row, value)})


BAD_TRACKS = [
    pytest.param(track_file(lambda d: d.drop(columns=["latitude"])), "lacks the column(s) latitude",
                 id="missing-column"),
    pytest.param(track_file(replace_at("altitude", 5, np.nan)),
                 "column altitude is empty or not a number in data row 6", id="nan-altitude"),
    pytest.param(track_file(lambda d: replace_at("timestamp", 6, d["timestamp"][5])(d)),
                 "the timestamp repeats at data row 7", id="duplicate-timestamp"),
    pytest.param(track_file(lambda d: d.iloc[[0, 1, 2, 4, 3, *range(5, len(d))]]),
                 "the timestamp goes back by 10 s at data row 5; timestamps must increase strictly (sort the rows by "
                 "time if they are out of order", id="decreasing-timestamp"),
    pytest.param(track_file(lambda d: d.iloc[:20]), "too few usable points: a track needs 33 points 10 s apart",
                 id="fewer-points-than-a-window"),
    pytest.param(track_file(replace_at("latitude", 3, 200.0)), "impossible latitude 200 deg in data row 4",
                 id="latitude-200"),
    pytest.param(track_file(lambda d: d.assign(altitude=(d["altitude"] * 0.3048).round())),
                 "altitude looks like metres", id="altitude-in-metres-labelled-feet"),
    pytest.param(track_file(lambda d: d.assign(timestamp=np.arange(len(d)) * 10.0).pipe(
        replace_at("timestamp", len(d) - 1, np.inf))), "timestamp inf in data row 65 is not a usable time",
                 id="infinite-timestamp"),
    pytest.param(track_file(lambda d: d.assign(timestamp=1.5e9 + np.arange(len(d)) * 1e7)),
                 "over the 7-day limit; give one flight per file", id="track-spanning-20-years"),
    pytest.param(sparse_file(100 * 2**20), "track.csv is 100.0 MiB, over the 50 MiB limit for track files",
                 id="100MB-csv-refused-by-size"),
    pytest.param(track_file(lambda d: d.assign(lng=d["longitude"]).rename(columns={"longitude": "lon"})),
                 "has two columns for longitude (lon, lng); keep one", id="two-longitude-columns"),
]


@pytest.mark.parametrize("build, words", BAD_TRACKS)
def test_bad_track_is_refused(build, words, tmp_path, capsys):
    path = build(tmp_path / "track.csv")
    assert_refused(["predict", "--task", "trajectory", path], words, capsys)


def test_extra_track_columns_are_ignored(tmp_path, capsys):
    """Columns the reader does not know (here squawk and a note) change nothing."""
    path = track_file(lambda d: d.assign(squawk=7000, note="ferry flight"))(tmp_path / "extra.csv")
    plain = predict_json(["--task", "trajectory", TRACK], capsys)
    extra = predict_json(["--task", "trajectory", path], capsys)
    assert extra["probabilities"] == plain["probabilities"] and extra["windows"] == plain["windows"] == 4


def test_predict_text_traces_a_verdict_to_its_windows(capsys):
    """The plain output says how many windows pass the threshold and where the most suspicious one starts (the
    real GNSS-interference sample: 14 of its 22 windows); the JSON carries every window's probabilities."""
    gnss = REPO / "assets" / "trajectory" / "false_gnss_interference_4baac6.csv"
    code, out, _ = cli(["predict", "--task", "trajectory", gnss], capsys)
    assert code == 0 and "windows with P(false) > 0.5: 14 of 22; highest 1.000 (window starting 22.7 min in)" in out
    assert "longest run of such windows: 14 in a row, starting 10.7 to 28.0 min in" in out  # where the episode is
    code, out, _ = cli(["predict", "--task", "trajectory", gnss, "--threshold", "0.99"], capsys)
    assert "windows with P(false) > 0.99: " in out and "; threshold 0.99)" in out
    result = predict_json(["--task", "trajectory", gnss], capsys)
    assert len(result["window_probabilities"]) == result["windows"] == 22


def test_heading_next_to_track_is_not_taken_for_it(tmp_path, capsys):
    """`heading` is read as the track when it is the only course column; next to a `track` column it is the
    aircraft's heading (wind makes them differ), so it is ignored instead of doubling the column (the
    `traffic` wheel's zero_gravity sample has both; it crashed the reader)."""
    path = track_file(lambda d: d.assign(heading=(d["track"] + 7.0) % 360.0))(tmp_path / "both.csv")
    plain = predict_json(["--task", "trajectory", TRACK], capsys)
    assert predict_json(["--task", "trajectory", path], capsys)["probabilities"] == plain["probabilities"]
    only = track_file(lambda d: d.rename(columns={"track": "heading"}))(tmp_path / "heading.csv")
    assert predict_json(["--task", "trajectory", only], capsys)["probabilities"] == plain["probabilities"]


def test_track_without_vertical_rate_and_a_lone_point_after_a_gap(tmp_path, capsys):
    """A file lacking a reported field whose gaps leave a one-point piece (the wheel's dreamliner_boeing
    sample): the field is derived on the pieces long enough for a window and the lone point is skipped
    (deriving on it crashed the reader)."""
    def change(d: pd.DataFrame) -> pd.DataFrame:
        d = d.drop(columns=["vertical_rate"])
        return pd.concat([d.iloc[:1].assign(timestamp="2018-08-01T00:00:00Z"), d], ignore_index=True)
    out = predict_json(["--task", "trajectory", track_file(change)(tmp_path / "lone.csv")], capsys)
    assert out["windows"] == 4 and out["input"]["derived_fields"] == ["vertical_rate"] and out["input"]["segments"] == 2


def as_messages(d: pd.DataFrame) -> pd.DataFrame:
    """The track as ADS-B messages: each report split into a position row and, 1 s later, a velocity row."""
    t = pd.to_datetime(d["timestamp"], utc=True)
    position = d.assign(groundspeed=np.nan, track=np.nan, vertical_rate=np.nan)
    velocity = d.assign(latitude=np.nan, longitude=np.nan, altitude=np.nan,
                        timestamp=(t + pd.Timedelta(seconds=1)).dt.strftime("%Y-%m-%dT%H:%M:%SZ"))
    return pd.concat([position, velocity]).sort_values("timestamp", kind="stable")


def test_rows_with_only_some_fields_need_allow_missing(tmp_path, capsys):
    """A track in separate position and velocity rows is refused with a line saying how to read it;
    `--allow-missing` interpolates each field from the rows that carry it (same verdict and windows as the
    complete file) and the output counts the empty cells; the option is refused for a task without cells."""
    path = track_file(as_messages)(tmp_path / "messages.csv")
    assert_refused(["predict", "--task", "trajectory", path],
                   "column latitude is empty or not a number in data row 2 (65 row(s) in all); if rows carry only "
                   "some fields (ADS-B messages), allow missing values", capsys)
    plain = predict_json(["--task", "trajectory", TRACK], capsys)
    out = predict_json(["--task", "trajectory", path, "--allow-missing"], capsys)
    assert out["label"] == plain["label"] and out["windows"] == plain["windows"] == 4
    assert abs(out["probabilities"]["false"] - plain["probabilities"]["false"]) < 0.05
    assert out["input"]["missing_cells"] == {c: 65 for c in ("latitude", "longitude", "altitude", "groundspeed",
                                                             "track", "vertical_rate")}
    code, text, _ = cli(["predict", "--task", "trajectory", path, "--allow-missing"], capsys)
    assert code == 0 and "empty cells interpolated: latitude 65, longitude 65, altitude 65" in text
    assert_refused(["predict", "--task", "soc", SOC_TRACE, "--allow-missing"],
                   "allow_missing does not apply to soc files", capsys)


# -------------------------------------------------------------------------------------------- SOC


def soc_file(change: Callable[[pd.DataFrame], pd.DataFrame]) -> Callable[[Path], Path]:
    """A builder writing the first 600 s of the bundled FUDS trace after `change` as CSV."""
    def build(path: Path) -> Path:
        change(pd.read_csv(SOC_TRACE, nrows=600)).to_csv(path, index=False)
        return path
    return build


BAD_SOC = [
    pytest.param(soc_file(lambda d: d.assign(current_a=d["current_a"] * 1000)),
                 "current_a reaches 9960, which looks like milliamps; give amperes", id="current-in-mA"),
    pytest.param(soc_file(lambda d: d.drop(columns=["temperature_c"])), "is missing column(s) temperature_c",
                 id="missing-temperature"),
    pytest.param(soc_file(replace_at("voltage_v", 10, np.nan)),
                 "column voltage_v has a missing, NaN or infinite value at line 12", id="nan-voltage"),
]


@pytest.mark.parametrize("build, words", BAD_SOC)
def test_bad_soc_csv_is_refused(build, words, tmp_path, capsys):
    path = build(tmp_path / "drive.csv")
    assert_refused(["predict", "--task", "soc", path], words, capsys)


def test_irregular_soc_sampling_is_resampled_to_1hz(tmp_path, capsys):
    """Steps of 0.5-1.5 s (no gap over 10 s) are interpolated onto a 1 Hz grid, and the note says so."""
    t = np.cumsum(np.random.default_rng(0).uniform(0.5, 1.5, 600)).round(3)
    path = soc_file(lambda d: d.assign(time_s=t))(tmp_path / "irregular.csv")
    doc = predict_json(["--task", "soc", path], capsys)
    assert len(doc["soc"]) == int(np.floor(t[-1] - t[0])) + 1
    step = np.median(np.diff(t))
    assert doc["input"]["notes"] == [f"resampled from a median step of {step:.3g} s to 1 Hz by linear interpolation"]
    assert doc["rmse"] is not None


# ------------------------------------------------------------------------------------ checkpoints


@pytest.fixture
def soc_checkpoint(tmp_path: Path) -> Path:
    """A copy of the bundled float SOC checkpoint (config, weights, calibration set) to spoil."""
    folder = tmp_path / "ckpt"
    shutil.copytree(REPO / "pretrained" / "soc" / "float", folder)
    return folder


@pytest.fixture
def soc_input(tmp_path: Path) -> Path:
    return soc_file(lambda d: d)(tmp_path / "drive.csv")


class _Payload:
    """Unpickling this would create the file named `marker`."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self):
        return (Path.write_text, (self.marker, "pwned"))


def tamper_weights(folder: Path) -> None:
    data = bytearray((folder / "model.safetensors").read_bytes())
    data[-5] ^= 0xFF
    (folder / "model.safetensors").write_bytes(bytes(data))


def pickle_payload(folder: Path) -> None:
    """Weights replaced by a pickle, with the config's sha256 updated to match it."""
    payload = pickle.dumps({"gru.weight_ih_l0": _Payload(folder / "marker")})
    (folder / "model.safetensors").write_bytes(payload)
    config = json.loads((folder / "config.json").read_text())
    config["sha256"] = hashlib.sha256(payload).hexdigest()
    (folder / "config.json").write_text(json.dumps(config))


def pickled_calibration(folder: Path) -> None:
    np.savez(folder / "calibration.npz", x=np.array([_Payload(folder / "marker")], dtype=object))


def without_stats(folder: Path) -> None:
    config = json.loads((folder / "config.json").read_text())
    del config["extra"]["stats"]
    (folder / "config.json").write_text(json.dumps(config))


BAD_CHECKPOINTS = [
    pytest.param("soc", tamper_weights, [], "does not match the sha256 in its config (tampered or corrupt)",
                 id="tampered-weights"),
    pytest.param("trajectory", lambda f: None, [], "is for task 'soc', not 'trajectory'",
                 id="config-for-another-task"),
    pytest.param("soc", pickle_payload, [], "model.safetensors is not a valid safetensors file",
                 id="pickle-payload-weights"),
    pytest.param("soc", lambda f: (f / "model.safetensors").unlink(), [], "has no model.safetensors",
                 id="missing-weights"),
    pytest.param("soc", lambda f: (f / "config.json").unlink(), [], "has no config.json", id="missing-config"),
    pytest.param("soc", shutil.rmtree, [], "checkpoint folder not found", id="missing-folder"),
    pytest.param("soc", lambda f: (f / "calibration.npz").write_bytes(b"garbage" * 10), ["--weight-bits", "6"],
                 "calibration.npz is not a readable NPZ archive", id="corrupt-calibration"),
    pytest.param("soc", pickled_calibration, ["--weight-bits", "6"],
                 "holds corrupt data or pickled objects (never loaded)", id="pickled-calibration"),
    pytest.param("soc", without_stats, [], "has no input statistics (extra.stats)", id="config-without-stats"),
]


@pytest.mark.parametrize("task, spoil, extra, words", BAD_CHECKPOINTS)
def test_bad_checkpoint_is_refused(task, spoil, extra, words, soc_checkpoint, soc_input, capsys):
    spoil(soc_checkpoint)
    path = TRACK if task == "trajectory" else soc_input
    assert_refused(["predict", "--task", task, path, "--checkpoint", soc_checkpoint, *extra], words, capsys)
    assert not (soc_checkpoint / "marker").exists()  # a pickle is refused, never executed


def test_untouched_checkpoint_copy_works(soc_checkpoint, soc_input, capsys):
    """The spoiled copies above fail because of the spoiling, not because of the copy."""
    doc = predict_json(["--task", "soc", soc_input, "--checkpoint", soc_checkpoint, "--weight-bits", "6"], capsys)
    assert len(doc["soc"]) == 600 and doc["rmse"] < 20 and "gate_bits" not in doc
    base = ["--task", "soc", soc_input, "--checkpoint", soc_checkpoint, "--weight-bits", "6", "--act-bits", "4"]
    coarse, fine = predict_json(base, capsys), predict_json([*base, "--gate-bits", "12"], capsys)
    assert fine["gate_bits"] == 12 and fine["soc"] != coarse["soc"]


# -------------------------------------------------------------------------------------- arguments


@pytest.fixture
def a_file(tmp_path: Path) -> Path:
    path = tmp_path / "taken"
    path.write_text("a file where a folder is wanted\n")
    return path


BAD_ARGUMENTS = [
    pytest.param(["predict", "--task", "trajectory", TRACK, "--weight-bits", "0"], "bits must be 2..16 or 32",
                 id="bits-0"),
    pytest.param(["predict", "--task", "trajectory", TRACK, "--weight-bits", "1"], "bits must be 2..16 or 32",
                 id="bits-1"),
    pytest.param(["crossbar", "--task", "soc", "--weight-bits", "33"], "bits must be 2..16 or 32", id="bits-33"),
    pytest.param(["evaluate", "--task", "soc", "--bits", "4,1"], "bits must be 2..16 or 32", id="bits-list-with-1"),
    pytest.param(["evaluate", "--task", "soc", "--bits", ","], "expected comma-separated bits", id="bits-list-empty"),
    pytest.param(["evaluate", "--task", "soc", "--gate-bits", "17"], "bits must be 2..16 or 32", id="gate-bits-17"),
    pytest.param(["experiment", "--task", "soc", "--name", "bits", "--act-bits", "1"], "bits must be 2..16 or 32",
                 id="experiment-act-bits-1"),
    pytest.param(["predict", "--task", "trajectory", TRACK, "--sigma", "-0.1"], "sigma must be in [0, 1]",
                 id="negative-sigma"),
    pytest.param(["crossbar", "--task", "soc", "--sigma", "1.5"], "sigma must be in [0, 1]", id="sigma-over-1"),
    pytest.param(["predict", "--task", "weather", TRACK], "invalid choice: 'weather'", id="unknown-task"),
    pytest.param(["predict", "--task", "trajectory", TRACK, "--seed", "-1"], "seed must be in 0..4294967295",
                 id="negative-seed"),
    pytest.param(["crossbar", "--task", "soc", "--seed", str(2**64)], "seed must be in 0..4294967295",
                 id="seed-too-large"),
    pytest.param(["evaluate", "--task", "soc", "--seeds", "0"], "expected a positive integer, got 0", id="seeds-0"),
    pytest.param(["predict", "--task", "trajectory", "no-such-file.csv"], "track file not found",
                 id="missing-input-file"),
    pytest.param(["predict", "--task", "trajectory", TRACK, "--threshold", "1"], "threshold must be between 0 and 1",
                 id="threshold-1"),
    pytest.param(["predict", "--task", "trajectory", TRACK, "--threshold", "nan"], "threshold must be between 0 and 1",
                 id="threshold-nan"),
    pytest.param(["predict", "--task", "soc", SOC_TRACE, "--threshold", "0.5"], "needs a two-class task; soc has no",
                 id="threshold-for-soc"),
    pytest.param(["evaluate", "--task", "soc", "--act-percentile", "99.9,40"],
                 "expected comma-separated percentiles in (50, 100]", id="act-percentile-40"),
    pytest.param(["experiment", "--task", "soc", "--name", "bits", "--act-percentile", "99.9,99"],
                 "expected one percentile in (50, 100]", id="experiment-two-percentiles"),
]


@pytest.mark.parametrize("args, words", BAD_ARGUMENTS)
def test_bad_arguments_are_refused(args, words, capsys):
    assert_refused(args, words, capsys)


BAD_OUTPUTS = [
    pytest.param(lambda f: ["evaluate", "--task", "soc", "--out", f / "rows.csv"], "exists and is not a folder",
                 id="evaluate-out-under-a-file"),
    pytest.param(lambda f: ["train", "--task", "soc", "--out", f / "run", "--data-dir", f.parent / "no-data"],
                 "cannot write into", id="train-out-under-a-file"),
    pytest.param(lambda f: ["crossbar", "--task", "soc", "--export", f], "exists and is not a folder",
                 id="crossbar-export-into-a-file"),
]


@pytest.mark.parametrize("args, words", BAD_OUTPUTS)
def test_unwritable_outputs_are_refused_before_any_work(args, words, a_file, capsys):
    assert_refused(args(a_file), words, capsys)
    assert a_file.read_text() == "a file where a folder is wanted\n"


# ------------------------------------------------------------------------------- reproducibility


def test_output_into_a_closed_pipe_is_not_an_error():
    """`memgru predict ... | head -1`: the reader closes the pipe early; the command must end quietly with 0,
    not print a BrokenPipeError traceback (a real subprocess: the pipe is closed before anything is written)."""
    import subprocess
    import sys

    with subprocess.Popen([sys.executable, "-m", "memgru", "predict", "--task", "trajectory", str(TRACK)],
                          stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=REPO) as proc:
        proc.stdout.close()
        err = proc.stderr.read().decode()
        code = proc.wait(timeout=120)
    assert code == 0 and "Traceback" not in err and "BrokenPipe" not in err, err


def test_same_seed_gives_byte_identical_predict_json(capsys):
    args = ["predict", "--task", "trajectory", TRACK, "--weight-bits", "4", "--sigma", "0.05", "--seed", "3", "--json"]
    first, second = cli(args, capsys), cli(args, capsys)
    assert first[0] == 0 and first == second
    other = cli([*args[:-2], "4", "--json"], capsys)  # another device seed programs another chip
    assert json.loads(other[1])["probabilities"] != json.loads(first[1])["probabilities"]


def test_predict_threshold_moves_the_verdict_of_a_track(capsys):
    """The threshold decides on the averaged P(false) the output reports: just below it the file is called
    false, just above it true, and the probabilities do not change."""
    code, out, _ = cli(["predict", "--task", "trajectory", TRACK, "--json"], capsys)
    plain = json.loads(out)
    p_false = plain["probabilities"]["false"]
    assert code == 0 and "threshold" not in plain and 0.0 < p_false < 1.0
    verdicts = {}
    for threshold in (p_false * 0.999, min(p_false * 1.001 + 1e-6, 0.999999)):
        code, out, _ = cli(["predict", "--task", "trajectory", TRACK, "--threshold", str(threshold), "--json"], capsys)
        result = json.loads(out)
        assert code == 0 and result["threshold"] == threshold and result["probabilities"] == plain["probabilities"]
        verdicts[threshold] = result["label"]
    assert list(verdicts.values()) == ["false", "true"]


def test_same_seeds_give_byte_identical_evaluate_json(tmp_path, capsys):
    """`evaluate` twice on a small test split (16 calibration windows of the bundled trajectory model): the
    same JSON, byte for byte (no wall times in it). (The real SOC test set takes minutes.)"""
    with np.load(REPO / "pretrained" / "trajectory" / "calibration.npz") as data:
        x = data["x"][:16]
    SequenceSet(x, np.arange(16) % 2, pd.DataFrame({"i": range(16)})).save(tmp_path / "test")
    args = ["evaluate", "--task", "trajectory", "--data-dir", tmp_path, "--bits", "6", "--sigma", "0.05",
            "--seeds", "2", "--json"]
    runs = []
    for _ in range(2):
        code, out, err = cli(args, capsys)
        assert code == 0, err
        runs.append(out)
    assert runs[0] == runs[1] and [r["seed"] for r in json.loads(runs[0])["rows"]] == [0, 1]
    code, out, err = cli(["evaluate", "--task", "trajectory", "--data-dir", tmp_path, "--bits", "6,32",
                          "--act-percentile", "100,99.9", "--json"], capsys)
    rows = json.loads(out)["rows"]  # a calibration sweep names each row's, min/max (100) included
    assert code == 0 and [(r["weight_bits"], r["act_percentile"]) for r in rows] == [(6, 100), (32, 100), (6, 99.9),
                                                                                      (32, 99.9)]


# -------------------------------------------------------------------------- readers vs. any bytes


SPECIAL_CELLS = ("", "nan", "inf", "-inf", "1e308", "-1e308", "0", "-1", "1e12", "abc", '"', "9" * 30,
                 "2262-04-12T00:00:00Z")
"""Cell values that break naive number or time parsing."""


@st.composite
def hostile_bytes(draw: st.DrawFn, samples: tuple[bytes, ...], text: bool) -> bytes:
    """Arbitrary bytes, one of the valid `samples` truncated and overwritten at random places, or (CSV
    `text` samples) a sample's first lines with a few cells replaced by `SPECIAL_CELLS`, often in the first
    column and in the first or last row, where a bad time passes the ordering checks."""
    kinds = ["random", "mutated", *(["cells"] if text else [])]
    kind = draw(st.sampled_from(kinds))
    if kind == "random":
        return draw(st.binary(max_size=2048))
    sample = draw(st.sampled_from(samples))
    if kind == "mutated":
        data = bytearray(sample[: draw(st.integers(1, len(sample)))])
        for _ in range(draw(st.integers(0, 4))):
            at = draw(st.integers(0, len(data) - 1))
            data[at : at + 1] = draw(st.binary(min_size=1, max_size=4))
        return bytes(data)
    lines = [line.split(",") for line in sample.decode().splitlines()]
    lines = lines[: draw(st.integers(1, len(lines)))]
    for _ in range(draw(st.integers(1, 4))):
        row = draw(st.one_of(st.just(1), st.just(len(lines) - 1), st.integers(0, len(lines) - 1)))
        row = min(row, len(lines) - 1)
        column = min(draw(st.one_of(st.just(0), st.integers(0, len(lines[row]) - 1))), len(lines[row]) - 1)
        lines[row][column] = draw(st.sampled_from(SPECIAL_CELLS))
    return "\n".join(",".join(cells) for cells in lines).encode()


def _wav_bytes() -> bytes:
    buffer = io.BytesIO()
    sf.write(buffer, tone(0.5), 22050, format="WAV", subtype="PCM_16")
    return buffer.getvalue()


def _epoch_track() -> bytes:
    frame = pd.read_csv(TRACK)
    seconds = (pd.to_datetime(frame["timestamp"]) - pd.Timestamp("1970-01-01", tz="UTC")).dt.total_seconds()
    return frame.assign(timestamp=seconds).to_csv(index=False).encode()


READERS = {
    "trajectory": ("track.csv", (TRACK.read_bytes(), _epoch_track()), True),
    "soc": ("drive.csv", (b"".join(SOC_TRACE.read_bytes().splitlines(keepends=True)[:150]),), True),
    "audio": ("clip.wav", (_wav_bytes(),), False),
}
"""Task -> (file name, valid samples to mutate, whether they are CSV text). The track comes with ISO
date-times and with epoch seconds: the two take different parsing paths."""


@pytest.mark.parametrize("task", list(READERS))
def test_readers_raise_only_memgru_errors_on_any_bytes(task, tmp_path_factory):
    name, samples, text = READERS[task]
    path = tmp_path_factory.mktemp(task) / name
    stats = json.loads((REPO / "pretrained" / task / "config.json").read_text())["extra"]["stats"]
    read = task_io(task).read_input

    @settings(max_examples=100, deadline=None, derandomize=True, database=None,
              suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(data=hostile_bytes(samples, text))
    def never_crashes(data: bytes) -> None:
        path.write_bytes(data)
        try:
            read(path, stats)
        except MemgruError as exc:  # anything else fails the test
            assert str(exc) and "\n" not in str(exc), repr(str(exc))

    never_crashes()
