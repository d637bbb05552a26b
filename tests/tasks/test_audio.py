"""Audio task data: decoding/validation, windows, features (parity with librosa), cache, stats, UrbanSound8K
loader on a fake copy, synthesis models, corpus split rules. No network, no source packages needed."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf

from memgru.errors import MemgruError
from memgru.tasks import audio_synth
from memgru.tasks.audio import (
    CLIP_SAMPLES,
    LABELS,
    SAMPLE_RATE,
    FeatureCache,
    FeatureConfig,
    NormStats,
    add_white_noise,
    clip_windows,
    compute_features,
    decode_audio,
    label_from_filename,
    leaked_recordings,
    load_split,
    load_stats,
    load_urbansound8k,
    mel_filterbank,
    noisy_clip_features,
    noisy_windows,
    read_audio_file,
    read_user_audio,
    save_splits,
    urbansound8k_partition,
    window_starts,
)
from memgru.tasks.audio_corpus import (
    REAL_SOURCES,
    VIRTUAL_SPLIT,
    check_split_integrity,
    corpus_waveforms,
    mix_background,
    virtual_sources,
)
from memgru.tasks.common import SequenceSet

ASSETS = Path(__file__).resolve().parents[2] / "assets" / "audio"


def _tone(seconds: float, sr: int, freq: float = 440.0, channels: int = 1) -> np.ndarray:
    t = np.arange(int(seconds * sr)) / sr
    x = 0.5 * np.sin(2 * np.pi * freq * t).astype(np.float32)
    return np.stack([x] * channels, axis=1) if channels > 1 else x


def _wav_bytes(x: np.ndarray, sr: int, fmt: str = "WAV", subtype: str | None = None) -> bytes:
    buf = io.BytesIO()
    sf.write(buf, x, sr, format=fmt, subtype=subtype)
    return buf.getvalue()


def _stats(config: FeatureConfig | None = None) -> NormStats:
    config = config or FeatureConfig()
    f = config.n_features
    return NormStats(np.full(f, -40.0, np.float32), np.full(f, 20.0, np.float32), config)


# ---------------------------------------------------------------- decoding and validation


@pytest.mark.parametrize(("sr", "channels", "fmt"), [(44100, 2, "WAV"), (8000, 1, "FLAC"), (48000, 1, "OGG")])
def test_decode_resamples_any_rate_and_mixes_to_mono(sr: int, channels: int, fmt: str) -> None:
    x, info = decode_audio(_wav_bytes(_tone(1.5, sr, 440.0, channels), sr, fmt), name=f"a.{fmt.lower()}")
    assert x.dtype == np.float32 and x.ndim == 1
    assert abs(len(x) - 1.5 * SAMPLE_RATE) <= 2
    assert (info.sample_rate, info.channels) == (sr, channels)
    assert info.duration_s == pytest.approx(1.5, abs=1e-3)
    spectrum = np.abs(np.fft.rfft(x))
    assert np.fft.rfftfreq(len(x), 1 / SAMPLE_RATE)[spectrum.argmax()] == pytest.approx(440.0, abs=2.0)


def test_decode_mp3() -> None:
    if "MP3" not in sf.available_formats():
        pytest.skip("libsndfile without MP3")
    x, info = decode_audio(_wav_bytes(_tone(1.0, 44100), 44100, "MP3", "MPEG_LAYER_III"), name="a.mp3")
    assert info.sample_rate == 44100 and abs(len(x) / SAMPLE_RATE - 1.0) < 0.1


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"", "empty"),
        (b"this is plainly not audio, just some text " * 10, "not readable audio"),
        (_wav_bytes(np.zeros(22050, np.float32), 22050), "silent"),
        (_wav_bytes(np.zeros((0,), np.float32), 22050), "no audio samples"),
        (
            _wav_bytes(np.array([0.1, np.nan, 0.2] * 100, np.float32), 22050, "WAV", "FLOAT"),
            "NaN or infinite",
        ),
        (_wav_bytes(_tone(1.0, 22050), 22050)[:30], "not readable audio"),
    ],
    ids=["empty", "text", "silent", "zero-length", "nan", "truncated-header"],
)
def test_bad_audio_gives_one_clear_error(data: bytes, message: str) -> None:
    with pytest.raises(MemgruError, match=message):
        decode_audio(data, name="x.wav")


def test_file_size_is_checked_before_decoding(tmp_path: Path) -> None:
    big = tmp_path / "big.wav"
    big.write_bytes(b"\0" * 2048)  # not even audio: the size check must fire first
    with pytest.raises(MemgruError, match="over the 0 MiB limit"):
        read_audio_file(big, max_bytes=1024)
    with pytest.raises(MemgruError, match="not found"):
        read_audio_file(tmp_path / "missing.wav")


# ---------------------------------------------------------------- windows and features


def test_windows_pad_short_and_slide_over_long_recordings() -> None:
    assert window_starts(1000) == [0]
    assert window_starts(CLIP_SAMPLES) == [0]
    hop = 2 * SAMPLE_RATE
    assert window_starts(CLIP_SAMPLES + hop) == [0, hop]
    assert window_starts(CLIP_SAMPLES + hop + 100) == [0, hop, hop + 100]  # last one aligned to the end
    w = clip_windows(np.ones(1000, np.float32))
    assert w.shape == (1, CLIP_SAMPLES) and w[0, :1000].all() and not w[0, 1000:].any()
    x = np.arange(10 * SAMPLE_RATE, dtype=np.float32)
    w = clip_windows(x)
    assert w.shape == (4, CLIP_SAMPLES) and w[-1, -1] == x[-1]


def test_logmel_and_mfcc_match_librosa() -> None:
    librosa = pytest.importorskip("librosa")
    x = np.random.default_rng(0).standard_normal(CLIP_SAMPLES).astype(np.float32) * 0.1
    x[:SAMPLE_RATE] *= 0.01
    assert np.allclose(mel_filterbank(64, 2048, 0.0, 11025.0), librosa.filters.mel(sr=SAMPLE_RATE, n_fft=2048,
                       n_mels=64), atol=1e-7)  # fmt: skip
    cfg = FeatureConfig()
    ours = compute_features(x, cfg)
    assert ours.shape == (1, 173, 64) and (cfg.n_frames, cfg.n_features) == (173, 64)
    mel = librosa.feature.melspectrogram(y=x, sr=SAMPLE_RATE, n_fft=2048, hop_length=512, n_mels=64)
    ref = librosa.power_to_db(mel, ref=np.max, top_db=80.0).T
    assert np.abs(ours[0] - ref).max() < 1e-3
    mfcc = compute_features(x, FeatureConfig(kind="mfcc", n_mfcc=20))
    assert mfcc.shape == (1, 173, 20)
    assert np.abs(mfcc[0] - librosa.feature.mfcc(S=ref.T, n_mfcc=20).T).max() < 1e-2


def test_features_are_gain_invariant_and_batch_consistent() -> None:
    rng = np.random.default_rng(1)
    a, b = (rng.standard_normal(CLIP_SAMPLES).astype(np.float32) * s for s in (0.3, 0.05))
    cfg = FeatureConfig(n_fft=1024, n_mels=40)
    both = compute_features(np.stack([a, b]), cfg)
    assert np.allclose(both[0], compute_features(a, cfg)[0], atol=1e-4)
    assert np.allclose(both[1], compute_features(b, cfg)[0], atol=1e-4)
    assert np.allclose(compute_features(a * 0.01, cfg), compute_features(a, cfg), atol=1e-3)
    assert both.max() == pytest.approx(0.0) and both.min() >= -80.0


def test_feature_config_validation_and_round_trip() -> None:
    cfg = FeatureConfig(kind="mfcc", n_mfcc=13)
    assert FeatureConfig.from_dict(cfg.to_dict()) == cfg and cfg.key() != FeatureConfig().key()
    for bad in ({"kind": "cqt"}, {"n_mfcc": 100}, {"fmax": 20000.0}, {"hop_length": 0}):
        with pytest.raises(MemgruError):
            FeatureConfig(**bad)
    with pytest.raises(MemgruError, match="unknown"):
        FeatureConfig.from_dict({"bands": 3})


# ---------------------------------------------------------------- cache, statistics, user input


def test_cache_keys_on_content_and_config(tmp_path: Path) -> None:
    data = _wav_bytes(_tone(2.0, 22050), 22050)
    cache = FeatureCache(tmp_path / "cache")
    f1, _ = cache.featurise(data, FeatureConfig(), name="a.wav")
    f2, info = cache.featurise(data, FeatureConfig(), name="renamed.wav")
    assert (cache.hits, cache.misses) == (1, 1) and info.name == "renamed.wav" and np.array_equal(f1, f2)
    cache.featurise(data, FeatureConfig(kind="mfcc"), name="a.wav")
    cache.featurise(_wav_bytes(_tone(2.0, 22050, 300.0), 22050), FeatureConfig(), name="b.wav")
    assert cache.misses == 3 and len(list((tmp_path / "cache").glob("*.npz"))) == 3
    fresh = FeatureCache(tmp_path / "cache")  # a new process finds the disk copy
    f3, info3 = fresh.featurise(data, FeatureConfig(), name="a.wav")
    assert fresh.hits == 1 and np.array_equal(f1, f3) and info3.duration_s == pytest.approx(2.0)


def test_norm_stats_fit_apply_and_json_round_trip(tmp_path: Path) -> None:
    raw = np.random.default_rng(3).normal(-30, 7, (20, 173, 64)).astype(np.float32)
    stats = NormStats.fit(raw, FeatureConfig())
    z = stats.apply(raw)
    assert abs(z.mean()) < 1e-3 and abs(z.std() - 1) < 1e-2
    stats.save(tmp_path / "stats.json")
    back = NormStats.load(tmp_path / "stats.json")
    assert np.allclose(back.mean, stats.mean) and back.config == stats.config
    with pytest.raises(MemgruError, match="do not match"):
        NormStats.from_dict({**stats.to_dict(), "mean": [0.0] * 3})


def test_read_user_audio_windows_long_stereo_file(tmp_path: Path) -> None:
    path = tmp_path / "dog_bark_long.flac"
    sf.write(path, _tone(9.0, 44100, 440.0, 2), 44100)
    got = read_user_audio(path, _stats().to_dict())
    assert got.windows.shape == (4, 173, 64) and got.windows.dtype == np.float32
    assert got.window_starts_s == [0.0, 2.0, 4.0, 5.0]
    assert got.truth == "dog_bark" and got.info.channels == 2
    short = tmp_path / "7061-6-0-0.wav"  # UrbanSound8K naming: classID 6 = gun_shot
    sf.write(short, _tone(0.5, 16000), 16000)
    got = read_user_audio(short, _stats(FeatureConfig(kind="mfcc")))
    assert got.windows.shape == (1, 173, 40) and got.truth == "gun_shot"


def test_label_from_filename() -> None:
    assert label_from_filename("100032-3-0-0.wav") == "dog_bark"
    assert label_from_filename("siren__synthetic.ogg") == "siren"
    assert label_from_filename("recording.wav") is None


# ---------------------------------------------------------------- UrbanSound8K


def _fake_urbansound8k(root: Path) -> pd.DataFrame:
    """Tiny copy in the standard layout: 2 recordings per fold, 2 slices each, short synthetic wavs."""
    rows = []
    for fold in range(1, 11):
        (root / "audio" / f"fold{fold}").mkdir(parents=True)
        for r in range(2):
            fsid, cid = 1000 * fold + r, (fold + r) % 10
            for s in range(2):
                name = f"{fsid}-{cid}-0-{s}.wav"
                x = _tone(0.3 + 0.1 * s, 22050, 200.0 + 100 * cid)
                sf.write(root / "audio" / f"fold{fold}" / name, x, 22050)
                rows.append([name, fsid, 0.5 * s, 0.5 * s + 0.3, 1, fold, cid, LABELS[cid]])
    columns = ["slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class"]
    meta = pd.DataFrame(rows, columns=columns)
    (root / "metadata").mkdir()
    meta.to_csv(root / "metadata" / "UrbanSound8K.csv", index=False)
    return meta


def test_urbansound8k_official_folds_and_random_split(tmp_path: Path) -> None:
    meta = _fake_urbansound8k(tmp_path)
    parts = urbansound8k_partition(meta, protocol="folds", test_fold=10)
    assert set(parts["test"]["fold"]) == {10} and set(parts["val"]["fold"]) == {1}
    assert set(parts["train"]["fold"]) == set(range(2, 10)) and leaked_recordings(parts) == 0
    rand = urbansound8k_partition(meta, protocol="random", seed=0)
    assert sum(len(p) for p in rand.values()) == len(meta) and len(rand["train"]) == 32
    sets, stats = load_urbansound8k(tmp_path, protocol="folds", test_fold=3)
    assert sets["test"].x.shape == (4, 173, 64) and set(sets["test"].meta["fold"]) == {3}
    assert (sets["test"].meta["protocol"] == "folds").all()
    assert np.array_equal(sets["test"].y, sets["test"].meta["classID"].to_numpy())
    train_flat = sets["train"].x.reshape(-1, 64)
    assert np.allclose(train_flat.mean(0), 0, atol=1e-3)  # normalised with train-only statistics
    save_splits(tmp_path / "out", sets, stats)
    assert np.array_equal(load_split(tmp_path / "out", "val").x, sets["val"].x)
    assert load_stats(tmp_path / "out").config == FeatureConfig()


def test_urbansound8k_bad_layouts(tmp_path: Path) -> None:
    with pytest.raises(MemgruError, match="no UrbanSound8K metadata"):
        load_urbansound8k(tmp_path)
    meta = _fake_urbansound8k(tmp_path)
    (tmp_path / "audio" / "fold2" / meta.loc[meta["fold"] == 2, "slice_file_name"].iloc[0]).unlink()
    with pytest.raises(MemgruError, match="missing"):
        load_urbansound8k(tmp_path, test_fold=2)
    with pytest.raises(MemgruError, match="test_fold"):
        urbansound8k_partition(meta, test_fold=11)
    meta.assign(classID=0).to_csv(tmp_path / "metadata" / "UrbanSound8K.csv", index=False)
    with pytest.raises(MemgruError, match="disagree"):
        load_urbansound8k(tmp_path)


# ---------------------------------------------------------------- synthesis and corpus rules


def test_every_class_has_a_deterministic_sound_model() -> None:
    for label in LABELS:
        p = audio_synth.draw_params(label, np.random.default_rng(5))
        a = audio_synth.render(label, p, np.random.default_rng(6), 1.0)
        b = audio_synth.render(label, p, np.random.default_rng(6), 1.0)
        assert a.shape == (SAMPLE_RATE,) and np.array_equal(a, b) and np.abs(a).max() == pytest.approx(1.0)
    with pytest.raises(MemgruError):
        audio_synth.draw_params("cat_meow", np.random.default_rng(0))


def test_siren_sweeps_between_its_low_and_high_frequency() -> None:
    p = {"kind": "wail", "lo": 600.0, "hi": 1400.0, "period": 2.0, "tilt": 1.0, "odd": False}
    x = audio_synth.render("siren", p, np.random.default_rng(0), 4.0)
    frames = x[: 43 * 2048].reshape(-1, 2048)
    peaks = np.fft.rfftfreq(2048, 1 / SAMPLE_RATE)[np.abs(np.fft.rfft(frames * np.hanning(2048))).argmax(1)]
    assert 540 < peaks.min() < 800 and 1200 < peaks.max() < 1500


def test_corpus_splits_by_recording_and_by_virtual_source() -> None:
    check_split_integrity()
    groups: dict[str, set[str]] = {}
    for s in REAL_SOURCES:
        groups.setdefault(s.group, set()).add(s.split)
    assert all(len(v) == 1 for v in groups.values())
    assert {s.split for s in REAL_SOURCES if s.label == "background"} == {"train", "val", "test"}
    vs = virtual_sources(0)
    assert len({v.source_id for v in vs}) == len(vs) == 10 * 40
    for v in vs:
        assert int(v.source_id[-2:]) in VIRTUAL_SPLIT[v.split]
    assert [v.params for v in vs[:3]] == [v.params for v in virtual_sources(0)[:3]]


def test_background_mixing_hits_the_requested_snr() -> None:
    rng = np.random.default_rng(0)
    fg = np.zeros(CLIP_SAMPLES, np.float32)
    fg[:SAMPLE_RATE] = rng.standard_normal(SAMPLE_RATE) * 0.5
    bg = rng.standard_normal(3 * CLIP_SAMPLES).astype(np.float32)
    mixed = mix_background(fg, bg, 10.0, np.random.default_rng(1))
    noise = mixed - fg
    snr = 20 * np.log10(fg[:SAMPLE_RATE].std() / noise.std())
    assert snr == pytest.approx(10.0, abs=0.3)


def test_sequence_set_written_by_save_splits_has_metadata(tmp_path: Path) -> None:
    cfg = FeatureConfig()
    raw = compute_features(np.random.default_rng(4).standard_normal((3, CLIP_SAMPLES)), cfg)
    stats = NormStats.fit(raw, cfg)
    meta = pd.DataFrame({"clip_id": ["a", "b", "c"], "source_id": ["r1", "r1", "r2"]})
    save_splits(tmp_path, {"train": SequenceSet(stats.apply(raw), np.array([0, 1, 2]), meta)}, stats)
    got = load_split(tmp_path, "train")
    assert got.meta["source_id"].tolist() == ["r1", "r1", "r2"] and got.x.shape == (3, 173, 64)
    with pytest.raises(MemgruError, match="split must be"):
        load_split(tmp_path, "dev")


# ---------------------------------------------------------------- input noise on the waveform (Table 3)


def test_white_noise_hits_the_requested_snr_and_is_seeded() -> None:
    x = _tone(4.0, SAMPLE_RATE)
    for snr_db in (-10.0, 0.0, 10.0):
        noisy = add_white_noise(x, snr_db, np.random.default_rng(0))
        noise = noisy.astype(np.float64) - x
        measured = 10 * np.log10(np.mean(x.astype(np.float64) ** 2) / np.mean(noise**2))
        assert measured == pytest.approx(snr_db, abs=0.05)
        assert abs(np.mean(noise)) < 0.01 * np.std(noise)  # zero-mean white noise
    again = add_white_noise(x, 0.0, np.random.default_rng(3))
    assert np.array_equal(add_white_noise(x, 0.0, np.random.default_rng(3)), again)
    assert not np.any(add_white_noise(np.zeros(100, np.float32), 0.0, np.random.default_rng(0)))


def test_noisy_windows_go_through_the_feature_pipeline() -> None:
    x = _tone(9.0, SAMPLE_RATE) * np.linspace(0.2, 1.0, int(9.0 * SAMPLE_RATE), dtype=np.float32)
    stats = _stats()
    clean = stats.apply(compute_features(clip_windows(x), stats.config))
    assert np.allclose(noisy_windows(x, 200.0, 0, stats), clean, atol=1e-3)  # inaudible noise: same input
    low = noisy_windows(x, -5.0, 0, stats.to_dict())
    assert low.shape == clean.shape == (4, 173, 64)  # 9 s: windows at 0, 2, 4 and 5 s
    assert np.abs(low - clean).mean() > 0.2  # white noise fills the empty mel bands
    assert np.array_equal(low, noisy_windows(x, -5.0, 0, stats))
    assert not np.array_equal(low, noisy_windows(x, -5.0, 1, stats))


def test_clip_noise_is_keyed_by_clip_not_by_position() -> None:
    rng = np.random.default_rng(5)
    clips = (rng.standard_normal((3, CLIP_SAMPLES)) * 0.1).astype(np.float32)
    stats = _stats()
    whole = noisy_clip_features(clips, 0.0, 7, stats, ids=np.array([10, 11, 12]))
    part = noisy_clip_features(clips[[2]], 0.0, 7, stats, ids=np.array([12]))
    assert np.array_equal(whole[2], part[0])
    assert not np.array_equal(whole[0], noisy_clip_features(clips[[0]], 0.0, 7, stats)[0])  # ids default 0..N-1


def test_corpus_waveforms_refuse_a_folder_that_is_not_a_demo_corpus(tmp_path: Path) -> None:
    data = SequenceSet(np.zeros((1, 173, 64), np.float32), np.array([0]), pd.DataFrame({"clip_id": ["x"]}))
    with pytest.raises(MemgruError, match="not a built demo corpus"):
        corpus_waveforms(tmp_path, data)


# ---------------------------------------------------------------- committed samples


def test_committed_samples_are_readable_and_labelled() -> None:
    table = pd.read_csv(ASSETS / "samples.csv")
    assert set(table["label"]) == set(LABELS)
    assert set(table["kind"]) <= {"heldout_real", "real_in_training", "synthetic_heldout"}
    assert sum(p.stat().st_size for p in ASSETS.iterdir()) < 3 * 2**20
    stats = _stats()
    for row in table.itertuples():
        got = read_user_audio(ASSETS / row.file, stats)
        assert got.truth == row.label and got.windows.shape == (1, 173, 64)
    assert "ATTRIBUTION" in (ASSETS / "ATTRIBUTION.md").read_text().upper()
