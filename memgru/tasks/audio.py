"""Audio task data: decoding, 4-s windows, log-mel / MFCC features, UrbanSound8K, demo corpus splits.

Every clip the models see is 4 s of 22.05 kHz mono audio. Shorter recordings are zero-padded at the end;
longer ones are cut into 4-s windows every `WINDOW_HOP_S` = 2 s (50 % overlap, the last window aligned to
the end so no tail is lost) and a classifier averages its probabilities over the windows.

Features are computed with numpy (no numba JIT on the predict path) and match `librosa.feature.melspectrogram`
+ `librosa.power_to_db(ref=np.max, top_db=80)`: a periodic Hann STFT, a Slaney mel filter bank, dB relative to
the clip's loudest bin and floored `top_db` below it, so the features do not depend on the recording gain.
With the defaults (n_fft 2048, hop 512, 64 mel bands) a 4-s clip gives 173 frames x 64 features.

Example:
    >>> cfg = FeatureConfig()
    >>> (cfg.n_frames, cfg.n_features)
    (173, 64)
"""

from __future__ import annotations

import hashlib
import io
import json
import math
import re
import warnings
from collections import OrderedDict
from dataclasses import asdict, dataclass, field, replace
from functools import lru_cache
from pathlib import Path
from typing import Any, Literal

import numpy as np
import pandas as pd
import scipy.fft
import soundfile as sf
import soxr

from memgru.errors import MemgruError
from memgru.tasks.common import SequenceSet, read_user_file, write_json

SAMPLE_RATE = 22050
"""Sample rate (Hz) every recording is resampled to."""
CLIP_SECONDS = 4.0
"""Length (s) of one model input window (the UrbanSound8K slice length)."""
CLIP_SAMPLES = int(SAMPLE_RATE * CLIP_SECONDS)
WINDOW_HOP_S = 2.0
"""Step (s) between the starts of consecutive windows of a recording longer than 4 s."""
MAX_FILE_BYTES = 50 * 2**20
"""Largest user file accepted (bytes); checked before decoding."""
MAX_DURATION_S = 600.0
"""Longest user recording accepted (s); checked from the header before decoding the samples."""
SILENCE_PEAK = 1e-4
"""A recording whose peak |amplitude| (full scale 1.0) stays below this (-80 dBFS) is rejected as silent."""
LABELS: tuple[str, ...] = (
    "air_conditioner",
    "car_horn",
    "children_playing",
    "dog_bark",
    "drilling",
    "engine_idling",
    "gun_shot",
    "jackhammer",
    "siren",
    "street_music",
)
"""The 10 UrbanSound8K classes, in UrbanSound8K classID order."""
SPLITS = ("train", "val", "test")
STATS_FILE = "stats.json"


@dataclass(frozen=True)
class FeatureConfig:
    """How a 4-s window becomes a [frames, features] matrix."""

    kind: Literal["logmel", "mfcc"] = "logmel"
    """'logmel': log mel energies (dB); 'mfcc': DCT-II (orthonormal) of the log mel energies."""
    n_mels: int = 64
    """Number of mel bands."""
    n_mfcc: int = 40
    """Number of cepstral coefficients kept when kind == 'mfcc' (at most n_mels)."""
    n_fft: int = 2048
    """FFT / window length in samples (93 ms at 22.05 kHz)."""
    hop_length: int = 512
    """Step between frames in samples (23 ms); 4 s -> 1 + 88200 // hop frames."""
    fmin: float = 0.0
    """Lowest mel band edge (Hz)."""
    fmax: float = SAMPLE_RATE / 2
    """Highest mel band edge (Hz), at most the Nyquist frequency."""
    top_db: float = 80.0
    """Dynamic range (dB): values are floored this far below the clip's maximum."""

    def __post_init__(self) -> None:
        if self.kind not in ("logmel", "mfcc"):
            raise MemgruError(f"feature kind must be 'logmel' or 'mfcc', got {self.kind!r}")
        if self.n_fft < 64 or self.n_fft > CLIP_SAMPLES or self.hop_length < 1:
            raise MemgruError(f"n_fft must be in 64..{CLIP_SAMPLES} and hop_length >= 1")
        if self.n_mels < 1 or not 1 <= self.n_mfcc <= self.n_mels:
            raise MemgruError("need n_mels >= 1 and 1 <= n_mfcc <= n_mels")
        if not 0 <= self.fmin < self.fmax <= SAMPLE_RATE / 2:
            raise MemgruError(f"need 0 <= fmin < fmax <= {SAMPLE_RATE / 2} Hz")
        if self.top_db <= 0:
            raise MemgruError("top_db must be positive")

    @property
    def n_frames(self) -> int:
        """Frames per 4-s window (centred STFT)."""
        return 1 + CLIP_SAMPLES // self.hop_length

    @property
    def n_features(self) -> int:
        """Features per frame."""
        return self.n_mels if self.kind == "logmel" else self.n_mfcc

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (stored in stats.json and in checkpoints)."""
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> FeatureConfig:
        """Rebuild from `to_dict` output; unknown keys are an error."""
        unknown = set(d) - set(cls.__dataclass_fields__)
        if unknown:
            raise MemgruError(f"unknown feature config keys: {sorted(unknown)}")
        return cls(**d)

    def key(self) -> str:
        """Short stable hash of the configuration (part of the feature cache key)."""
        return hashlib.sha256(json.dumps(self.to_dict(), sort_keys=True).encode()).hexdigest()[:16]


# ---------------------------------------------------------------- decoding


@dataclass(frozen=True)
class AudioInfo:
    """What was decoded: facts for the report, independent of the features."""

    name: str
    """File name (or the name given for raw bytes)."""
    sha256: str
    """sha256 of the file content."""
    sample_rate: int
    """Original sample rate (Hz)."""
    channels: int
    """Original channel count (mixed down to mono)."""
    duration_s: float
    """Original duration (s)."""


def read_audio_file(path: str | Path, *, max_bytes: int = MAX_FILE_BYTES) -> tuple[np.ndarray, AudioInfo]:
    """Read a wav/flac/ogg/mp3 file (size-checked before decoding) into 22.05 kHz mono float32."""
    path = Path(path)
    return decode_audio(read_bytes_checked(path, max_bytes=max_bytes), name=path.name)


def read_bytes_checked(path: Path, *, max_bytes: int = MAX_FILE_BYTES) -> bytes:
    """Content of a user file after checking that it exists, is not empty and is at most `max_bytes`."""
    return read_user_file(path, max_bytes, "audio")


def decode_audio(data: bytes, *, name: str = "audio") -> tuple[np.ndarray, AudioInfo]:
    """Decode encoded audio bytes to 22.05 kHz mono float32 in [-1, 1] and validate it.

    Uses libsndfile (WAV, FLAC, OGG, MP3, ...); if that fails, librosa/audioread (ffmpeg or GStreamer, when
    installed). Raises MemgruError for empty, non-audio, corrupt, too long, NaN/inf or silent input.
    """
    if len(data) == 0:
        raise MemgruError(f"{name} is empty (0 bytes)")
    try:
        with sf.SoundFile(io.BytesIO(data)) as f:
            sr, channels, frames = f.samplerate, f.channels, f.frames
            _check_duration(name, frames, sr)
            x = f.read(dtype="float32", always_2d=True)
    except (sf.LibsndfileError, RuntimeError, TypeError) as err:
        x, sr = _decode_fallback(data, name, err)
        channels = x.shape[1]
        _check_duration(name, len(x), sr)
    if x.size == 0:
        raise MemgruError(f"{name} contains no audio samples (zero length)")
    if not np.isfinite(x).all():
        raise MemgruError(f"{name} contains NaN or infinite samples")
    mono = x.mean(axis=1, dtype=np.float32)
    if float(np.abs(mono).max()) < SILENCE_PEAK:
        raise MemgruError(f"{name} is silent (peak below -80 dBFS)")
    info = AudioInfo(name, hashlib.sha256(data).hexdigest(), int(sr), int(channels), len(x) / sr)
    return resample(mono, int(sr)), info


def _check_duration(name: str, frames: int, sr: int) -> None:
    if sr <= 0:
        raise MemgruError(f"{name} has an invalid sample rate ({sr} Hz)")
    if frames / sr > MAX_DURATION_S:
        raise MemgruError(f"{name} lasts {frames / sr:.0f} s, over the {MAX_DURATION_S:.0f} s limit")


def _decode_fallback(data: bytes, name: str, err: Exception) -> tuple[np.ndarray, int]:
    """Decode with librosa/audioread (needs a file on disk); MemgruError naming the libsndfile error.

    Without an audioread backend beyond its pure-Python one (WAV/AIFF/AU, which libsndfile reads too)
    the fallback cannot succeed, so it is skipped: that refuses a bad file at once, without importing
    librosa or leaking the file handle that backend leaves open on some corrupt headers.
    """
    import tempfile

    import audioread

    unreadable = MemgruError(f"{name} is not readable audio (wav/flac/ogg/mp3 expected): "
                             f"{str(err).strip().splitlines()[0].rsplit(': ', 1)[-1]}")
    if all(backend.__name__ == "RawAudioFile" for backend in audioread.available_backends()):
        raise unreadable from err

    import librosa

    suffix = Path(name).suffix if Path(name).suffix else ".bin"
    with tempfile.NamedTemporaryFile(suffix=suffix) as tmp:
        tmp.write(data)
        tmp.flush()
        try:
            with warnings.catch_warnings():  # librosa warns about its own audioread fallback
                warnings.simplefilter("ignore")
                y, sr = librosa.load(tmp.name, sr=None, mono=False)
        except Exception as err2:  # audioread raises several unrelated types (NoBackendError, EOFError ...)
            raise unreadable from err2
    y = np.asarray(y, dtype=np.float32)
    return (y[:, None] if y.ndim == 1 else y.T), int(sr)


def resample(x: np.ndarray, sr: int) -> np.ndarray:
    """Resample a mono float signal from `sr` Hz to 22.05 kHz (soxr, high quality)."""
    if sr == SAMPLE_RATE:
        return np.ascontiguousarray(x, dtype=np.float32)
    return soxr.resample(x.astype(np.float32), sr, SAMPLE_RATE, quality="HQ").astype(np.float32)


def window_starts(n_samples: int) -> list[int]:
    """Start sample of each 4-s window of a signal of `n_samples` (one window if it is 4 s or shorter)."""
    if n_samples <= CLIP_SAMPLES:
        return [0]
    hop = int(WINDOW_HOP_S * SAMPLE_RATE)
    starts = list(range(0, n_samples - CLIP_SAMPLES + 1, hop))
    if starts[-1] + CLIP_SAMPLES < n_samples:
        starts.append(n_samples - CLIP_SAMPLES)
    return starts


def clip_windows(x: np.ndarray) -> np.ndarray:
    """Cut a 22.05 kHz mono signal into float32 [W, 88200] windows (zero-padded at the end if short)."""
    if len(x) < CLIP_SAMPLES:
        x = np.pad(x, (0, CLIP_SAMPLES - len(x)))
    return np.stack([x[s : s + CLIP_SAMPLES] for s in window_starts(len(x))]).astype(np.float32)


# ---------------------------------------------------------------- features


@lru_cache(maxsize=8)
def mel_filterbank(n_mels: int, n_fft: int, fmin: float, fmax: float) -> np.ndarray:
    """Slaney-style mel filter bank, float32 [n_mels, n_fft // 2 + 1] (same as librosa.filters.mel)."""

    def hz_to_mel(f: np.ndarray) -> np.ndarray:
        f = np.asarray(f, dtype=np.float64)
        lin = f / (200.0 / 3)
        log = 15.0 + np.log(np.maximum(f, 1e-10) / 1000.0) / (np.log(6.4) / 27.0)
        return np.where(f >= 1000.0, log, lin)

    def mel_to_hz(m: np.ndarray) -> np.ndarray:
        lin = m * (200.0 / 3)
        log = 1000.0 * np.exp((np.log(6.4) / 27.0) * (m - 15.0))
        return np.where(m >= 15.0, log, lin)

    fft_freqs = np.linspace(0, SAMPLE_RATE / 2, n_fft // 2 + 1)
    mel_f = mel_to_hz(np.linspace(hz_to_mel(fmin), hz_to_mel(fmax), n_mels + 2))
    fdiff = np.diff(mel_f)
    ramps = mel_f[:, None] - fft_freqs[None, :]
    lower = -ramps[:-2] / fdiff[:-1, None]
    upper = ramps[2:] / fdiff[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper))
    weights *= (2.0 / (mel_f[2:] - mel_f[:-2]))[:, None]
    weights.flags.writeable = False
    return weights.astype(np.float32)


def compute_features(windows: np.ndarray, config: FeatureConfig) -> np.ndarray:
    """Raw (not normalised) features of 4-s windows: float32 [W, config.n_frames, config.n_features].

    `windows` is float [W, 88200] (or [88200] for one window) at 22.05 kHz.
    """
    w = np.atleast_2d(np.asarray(windows, dtype=np.float32))
    if w.shape[-1] != CLIP_SAMPLES:
        raise MemgruError(f"feature windows must hold {CLIP_SAMPLES} samples, got {w.shape[-1]}")
    n_fft, hop = config.n_fft, config.hop_length
    padded = np.pad(w, ((0, 0), (n_fft // 2, n_fft // 2)))
    frames = np.lib.stride_tricks.sliding_window_view(padded, n_fft, axis=-1)[:, ::hop]
    hann = (0.5 - 0.5 * np.cos(2 * np.pi * np.arange(n_fft) / n_fft)).astype(np.float32)
    spec = scipy.fft.rfft(frames * hann, axis=-1, workers=1)
    power = spec.real**2 + spec.imag**2
    mel = power @ mel_filterbank(config.n_mels, n_fft, config.fmin, config.fmax).T
    db = 10.0 * np.log10(np.maximum(mel, 1e-10))
    db -= db.max(axis=(1, 2), keepdims=True)
    db = np.maximum(db, -config.top_db)
    if config.kind == "mfcc":
        db = scipy.fft.dct(db, type=2, norm="ortho", axis=-1)[..., : config.n_mfcc]
    return db.astype(np.float32)


def add_white_noise(signal: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """`signal` plus white Gaussian noise at `snr_db` (dB) relative to the signal's mean power.

    The power is the mean square over the whole signal (a 4-s clip, or a whole recording), as in the
    paper's Table 3 (noise added to the sound, before the features). A silent signal stays silent.
    """
    x = np.asarray(signal, dtype=np.float64)
    power = float(np.mean(x**2)) if x.size else 0.0
    noise = rng.standard_normal(x.shape) * math.sqrt(power / 10 ** (snr_db / 10))
    return (x + noise).astype(np.float32)


def noisy_windows(signal: np.ndarray, snr_db: float, seed: int, stats: NormStats | dict[str, Any]) -> np.ndarray:
    """Normalised features [W, T, F] of a 22.05 kHz recording after `add_white_noise` at `snr_db` (seeded).

    What the model sees when the microphone hears the sound with white noise at that SNR: the noise is
    added to the waveform, then the recording is cut into 4-s windows and featurised like any input.
    """
    stats = stats if isinstance(stats, NormStats) else NormStats.from_dict(stats)
    noisy = add_white_noise(signal, snr_db, np.random.default_rng(seed))
    return stats.apply(compute_features(clip_windows(noisy), stats.config))


def noisy_clip_features(clips: np.ndarray, snr_db: float, seed: int, stats: NormStats,
                        ids: np.ndarray | None = None) -> np.ndarray:
    """Normalised features [N, T, F] of 4-s clips [N, 88200], each with its own white noise at `snr_db`.

    Clip i's noise comes from the generator seeded (seed, ids[i]) (`ids` default: 0..N-1); pass the
    clips' indices in their split so that a subset gets the same noise per clip as the whole split.
    """
    ids = np.arange(len(clips)) if ids is None else np.asarray(ids)
    out = np.empty((len(clips), stats.config.n_frames, stats.config.n_features), np.float32)
    for i, clip in enumerate(clips):
        noisy = add_white_noise(clip, snr_db, np.random.default_rng([seed, int(ids[i])]))
        out[i] = stats.apply(compute_features(noisy, stats.config))[0]
    return out


class FeatureCache:
    """Raw features of whole files, keyed by sha256(file content) + FeatureConfig.key().

    Always in memory (least recently used entries beyond `max_items` are dropped); when `directory` is
    given (the CLI uses data/cache/audio_features) entries are also written there as `<key>.npz`
    (float32 features + duration, loaded without pickle), so they survive the process.
    """

    def __init__(self, directory: str | Path | None = None, *, max_items: int = 256) -> None:
        self.directory = Path(directory) if directory is not None else None
        self.max_items = max_items
        self._memory: OrderedDict[str, tuple[np.ndarray, AudioInfo]] = OrderedDict()
        self.hits = 0
        self.misses = 0

    @staticmethod
    def key(data: bytes, config: FeatureConfig) -> str:
        """Cache key of file content `data` featurised with `config`."""
        return f"{hashlib.sha256(data).hexdigest()}-{config.key()}"

    def featurise(self, data: bytes, config: FeatureConfig, *, name: str) -> tuple[np.ndarray, AudioInfo]:
        """Raw features [W, T, F] and AudioInfo of encoded audio `data`, computed once per key."""
        key = self.key(data, config)
        if key in self._memory:
            self._memory.move_to_end(key)
            self.hits += 1
            feats, info = self._memory[key]
            return feats, replace(info, name=name)
        disk = self.directory / f"{key}.npz" if self.directory is not None else None
        if disk is not None and disk.is_file():
            with np.load(disk, allow_pickle=False) as z:
                feats = z["features"]
                info = AudioInfo(
                    name, str(z["sha256"]), int(z["sample_rate"]), int(z["channels"]), float(z["duration_s"])
                )
            self.hits += 1
        else:
            x, info = decode_audio(data, name=name)
            feats = compute_features(clip_windows(x), config)
            self.misses += 1
            if disk is not None:
                disk.parent.mkdir(parents=True, exist_ok=True)
                tmp = disk.with_suffix(".tmp.npz")
                np.savez(
                    tmp,
                    features=feats,
                    sha256=info.sha256,
                    sample_rate=info.sample_rate,
                    channels=info.channels,
                    duration_s=info.duration_s,
                )
                tmp.replace(disk)
        self._memory[key] = (feats, info)
        while len(self._memory) > self.max_items:
            self._memory.popitem(last=False)
        return feats, info


# ---------------------------------------------------------------- normalisation


@dataclass
class NormStats:
    """Per-feature mean/std from a training split, plus the feature config they belong to."""

    mean: np.ndarray
    """float32 [F]: mean of each feature over all training frames."""
    std: np.ndarray
    """float32 [F]: standard deviation of each feature over all training frames (floored at 1e-3)."""
    config: FeatureConfig = field(default_factory=FeatureConfig)
    """Feature configuration the statistics were computed with."""

    @classmethod
    def fit(cls, raw: np.ndarray, config: FeatureConfig) -> NormStats:
        """Statistics of raw training features [N, T, F]."""
        flat = raw.reshape(-1, raw.shape[-1]).astype(np.float64)
        return cls(flat.mean(0).astype(np.float32), np.maximum(flat.std(0), 1e-3).astype(np.float32), config)

    def apply(self, raw: np.ndarray) -> np.ndarray:
        """Normalise raw features [..., F] -> float32."""
        if raw.shape[-1] != len(self.mean):
            raise MemgruError(f"features have {raw.shape[-1]} columns but the statistics {len(self.mean)}")
        return ((raw - self.mean) / self.std).astype(np.float32)

    def to_dict(self) -> dict[str, Any]:
        """JSON-able form (what the lead stores in the checkpoint config)."""
        return {"mean": self.mean.tolist(), "std": self.std.tolist(), "feature_config": self.config.to_dict()}

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> NormStats:
        """Rebuild from `to_dict` output."""
        try:
            mean = np.asarray(d["mean"], dtype=np.float32)
            std = np.asarray(d["std"], dtype=np.float32)
            config = FeatureConfig.from_dict(d["feature_config"])
        except (KeyError, TypeError, ValueError) as err:
            raise MemgruError(f"bad audio normalisation statistics: {err}") from err
        if mean.shape != (config.n_features,) or std.shape != mean.shape or (std <= 0).any():
            raise MemgruError("bad audio normalisation statistics: mean/std do not match the feature config")
        return cls(mean, std, config)

    def save(self, path: str | Path) -> None:
        """Write as JSON."""
        write_json(path, self.to_dict())

    @classmethod
    def load(cls, path: str | Path) -> NormStats:
        """Read a JSON file written by `save`."""
        path = Path(path)
        if not path.is_file():
            raise MemgruError(f"no normalisation statistics at {path}; build the dataset first")
        return cls.from_dict(json.loads(path.read_text()))


# ---------------------------------------------------------------- user input


@dataclass
class AudioInput:
    """A user recording, ready for a classifier."""

    windows: np.ndarray
    """float32 [W, T, F] normalised features, one row per 4-s window (average the W predictions)."""
    window_starts_s: list[float]
    """Start time (s) of each window in the recording."""
    info: AudioInfo
    """Original sample rate, channels, duration, sha256."""
    truth: str | None
    """Label implied by the file name (UrbanSound8K 'fsID-classID-occ-slice' or a '<label>...' prefix)."""
    signal: np.ndarray | None = None
    """The decoded recording, float32 22.05 kHz mono (input-noise experiments add their noise to it)."""


_US8K_NAME = re.compile(r"^\d+-(\d)-\d+-\d+\.")


def label_from_filename(name: str) -> str | None:
    """Ground truth carried by a file name: UrbanSound8K naming or a leading class label; else None."""
    m = _US8K_NAME.match(name)
    if m:
        return LABELS[int(m.group(1))]
    lower = name.lower()
    return next((lab for lab in sorted(LABELS, key=len, reverse=True) if lower.startswith(lab)), None)


def read_user_audio(
    path: str | Path,
    stats: NormStats | dict[str, Any],
    *,
    cache: FeatureCache | None = None,
    max_bytes: int = MAX_FILE_BYTES,
    keep_signal: bool = True,
) -> AudioInput:
    """Validate and featurise a user's audio file for `predict` (size checked before decoding).

    `stats` (a NormStats or its dict form from the checkpoint) fixes the feature config and normalisation.
    With `keep_signal` the decoded recording is kept too (`AudioInput.signal`, for input noise); without it,
    a `cache` (e.g. a disk-backed FeatureCache) serves files it has featurised before.
    """
    stats = stats if isinstance(stats, NormStats) else NormStats.from_dict(stats)
    path = Path(path)
    data = read_bytes_checked(path, max_bytes=max_bytes)
    if keep_signal or cache is None:  # decode once; the features of one file need no cache
        signal, info = decode_audio(data, name=path.name)
        feats = compute_features(clip_windows(signal), stats.config)
    else:
        feats, info = cache.featurise(data, stats.config, name=path.name)
    last = max(0.0, info.duration_s - CLIP_SECONDS)
    return AudioInput(
        windows=stats.apply(feats),
        window_starts_s=[round(min(i * WINDOW_HOP_S, last), 3) for i in range(len(feats))],
        info=info,
        truth=label_from_filename(path.name),
        signal=signal if keep_signal else None,
    )


# ---------------------------------------------------------------- built datasets


def load_split(data_dir: str | Path, split: str) -> SequenceSet:
    """One split ('train', 'val', 'test') of a dataset written by `build_dataset` or `save_splits`."""
    if split not in SPLITS:
        raise MemgruError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    return SequenceSet.load(Path(data_dir) / split)


def load_stats(data_dir: str | Path) -> NormStats:
    """The normalisation statistics (and feature config) saved next to the splits."""
    return NormStats.load(Path(data_dir) / STATS_FILE)


def save_splits(out_dir: str | Path, splits: dict[str, SequenceSet], stats: NormStats) -> None:
    """Write splits as `<split>.npz/.csv` and the statistics as stats.json in `out_dir`."""
    out_dir = Path(out_dir)
    for name, s in splits.items():
        s.save(out_dir / name)
    stats.save(out_dir / STATS_FILE)


def build_dataset(out_dir: str | Path, *, seed: int = 0, **kwargs: Any) -> dict[str, Any]:
    """Build the offline demo corpus (`python -m memgru data audio-demo`); see audio_corpus.build_dataset."""
    from memgru.tasks.audio_corpus import build_dataset as build

    return build(Path(out_dir), seed=seed, **kwargs)


# ---------------------------------------------------------------- UrbanSound8K

US8K_COLUMNS = ("slice_file_name", "fsID", "start", "end", "salience", "fold", "classID", "class")
PROTOCOLS = ("folds", "random")
"""'folds': official 10-fold cross-validation (honest); 'random': 80/10/10 random split of slices
(slices of one recording land on both sides; optimistic, only for comparison with papers that used it)."""


def read_urbansound8k_metadata(data_root: str | Path) -> pd.DataFrame:
    """Read and check `metadata/UrbanSound8K.csv` of an UrbanSound8K copy at `data_root`."""
    root = Path(data_root)
    csv = root / "metadata" / "UrbanSound8K.csv"
    if not csv.is_file():
        raise MemgruError(f"no UrbanSound8K metadata at {csv} (expected the standard layout audio/foldN, metadata/)")
    meta = pd.read_csv(csv)
    missing = [c for c in US8K_COLUMNS if c not in meta.columns]
    if missing:
        raise MemgruError(f"{csv.name} lacks columns {missing}")
    if meta.empty:
        raise MemgruError(f"{csv.name} lists no slices")
    if not meta["fold"].between(1, 10).all() or not meta["classID"].between(0, 9).all():
        raise MemgruError(f"{csv.name} has folds outside 1..10 or classIDs outside 0..9")
    wrong = meta[[LABELS[c] != n for c, n in zip(meta["classID"], meta["class"], strict=True)]]
    if len(wrong):
        raise MemgruError(f"{csv.name}: classID and class disagree for {wrong['slice_file_name'].iloc[0]}")
    return meta


def urbansound8k_partition(
    meta: pd.DataFrame, *, protocol: str = "folds", test_fold: int = 10, seed: int = 0
) -> dict[str, pd.DataFrame]:
    """Split UrbanSound8K metadata into train/val/test rows.

    'folds' (official): test = fold `test_fold`, val = the next fold (10 -> 1), train = the other 8 folds;
    run it for test_fold 1..10 and average for the standard 10-fold CV number.
    'random': slices shuffled with `seed`, 80/10/10 (leaks recordings across splits; see PROTOCOLS).
    """
    if protocol == "folds":
        if not 1 <= test_fold <= 10:
            raise MemgruError(f"test_fold must be in 1..10, got {test_fold}")
        val_fold = test_fold % 10 + 1
        parts = {
            "train": meta[~meta["fold"].isin([test_fold, val_fold])],
            "val": meta[meta["fold"] == val_fold],
            "test": meta[meta["fold"] == test_fold],
        }
    elif protocol == "random":
        order = np.random.default_rng(seed).permutation(len(meta))
        n_train, n_val = int(0.8 * len(meta)), int(0.1 * len(meta))
        idx = np.split(order, [n_train, n_train + n_val])
        parts = {k: meta.iloc[np.sort(v)] for k, v in zip(SPLITS, idx, strict=True)}
    else:
        raise MemgruError(f"protocol must be one of {', '.join(PROTOCOLS)}, got {protocol!r}")
    return {k: v.reset_index(drop=True) for k, v in parts.items()}


def leaked_recordings(parts: dict[str, pd.DataFrame]) -> int:
    """Number of source recordings (fsID) whose slices appear both in train and in test."""
    return len(set(parts["train"]["fsID"]) & set(parts["test"]["fsID"]))


def load_urbansound8k(
    data_root: str | Path,
    *,
    protocol: str = "folds",
    test_fold: int = 10,
    seed: int = 0,
    config: FeatureConfig | None = None,
    cache: FeatureCache | None = None,
) -> tuple[dict[str, SequenceSet], NormStats]:
    """Featurise UrbanSound8K into normalised train/val/test SequenceSets and train-only statistics.

    Each slice (<= 4 s) gives one padded 4-s window. The metadata of each set carries fsID, fold, class,
    salience, `protocol` and `test_fold` so every reported number can name its protocol.
    Pass a disk-backed FeatureCache to featurise each file once across the 10 folds.
    """
    root = Path(data_root)
    config = config or FeatureConfig()
    cache = cache or FeatureCache(max_items=0)
    parts = urbansound8k_partition(read_urbansound8k_metadata(root), protocol=protocol, test_fold=test_fold, seed=seed)
    raw: dict[str, np.ndarray] = {}
    for split, rows in parts.items():
        feats = np.empty((len(rows), config.n_frames, config.n_features), np.float32)
        for i, (fold, fname) in enumerate(zip(rows["fold"], rows["slice_file_name"], strict=True)):
            wav = root / "audio" / f"fold{fold}" / fname
            if not wav.is_file():
                raise MemgruError(f"UrbanSound8K file listed in the metadata is missing: {wav}")
            feats[i] = cache.featurise(wav.read_bytes(), config, name=fname)[0][0]
        raw[split] = feats
    stats = NormStats.fit(raw["train"], config)
    sets = {}
    for split, rows in parts.items():
        meta = rows[["slice_file_name", "fsID", "fold", "classID", "class", "salience"]].assign(
            protocol=protocol, test_fold=test_fold if protocol == "folds" else math.nan
        )
        sets[split] = SequenceSet(stats.apply(raw[split]), rows["classID"].to_numpy(np.int64), meta)
    return sets, stats
