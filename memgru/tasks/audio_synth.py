"""Procedural sound models for the 10 UrbanSound8K classes (22.05 kHz mono float32).

Each class has a *source* model: `draw_params(label, rng)` picks the physical parameters of one virtual
device or scene (a siren's sweep range and waveform, an engine's rpm and cylinder count, a dog's size ...),
and `render(label, params, rng, seconds)` records one clip of it, varying only timing and small details.
A virtual source is the synthetic counterpart of one real recording: the demo corpus keeps all clips of a
virtual source in one split.

Models (simple physics, not samples):
    air_conditioner  fan noise (coloured, slowly fluctuating) + mains hum harmonics + blade-pass modulation
    car_horn         one or two harmonic-rich tones (two-tone horns are ~ a minor third apart), 1-3 honks
    children_playing several formant-synthesised high-pitched voices (f0 230-450 Hz) babbling and shouting
    dog_bark         source-filter barks: noisy harmonic burst, rising-then-falling f0, 1-6 barks
    drilling         motor whine (harmonic series at the rotation rate) + gear whine + bit noise, load dips
    engine_idling    firing pulses at rpm/60 * cylinders/2 exciting exhaust resonances
    gun_shot         muzzle blast (ms-long broadband burst + low thump) and a reverberant tail, 1-4 shots
    jackhammer       14-28 impacts/s of decaying modal (metallic) bursts + low thump, on/off bursts
    siren            wail / yelp / hi-lo sweeps of a harmonic tone with slow Doppler drift
    street_music     pentatonic melody on a plucked/sustained harmonic instrument, bass line, drum kit
"""

from __future__ import annotations

from collections.abc import Callable
from functools import lru_cache
from typing import Any

import numpy as np
from scipy import signal

from memgru.errors import MemgruError
from memgru.tasks.audio import LABELS, SAMPLE_RATE

SR = SAMPLE_RATE
Params = dict[str, Any]


def _u(rng: np.random.Generator, lo: float, hi: float) -> float:
    return float(rng.uniform(lo, hi))


def _tone(freq: np.ndarray, amps: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """Harmonic tone following the instantaneous frequency `freq` (Hz per sample); `amps[k]` is the
    amplitude of harmonic k + 1, harmonics that would pass 0.45 x the sample rate are dropped.

    Wavetable synthesis: one period holding the harmonics is read at the running phase, so the cost does not
    grow with the number of harmonics.
    """
    fmax = float(np.max(freq))
    n_harm = max(1, min(len(amps), int(0.45 * SR / max(fmax, 1e-6))))
    table = _wavetable(np.asarray(amps[:n_harm], dtype=float).tobytes())
    cycles = (np.cumsum(freq) / SR + _u(rng, 0, 1)) % 1.0
    return np.interp(cycles * _TABLE_SIZE, np.arange(_TABLE_SIZE + 1), table)


_TABLE_SIZE = 4096


@lru_cache(maxsize=512)
def _wavetable(amps: bytes) -> np.ndarray:
    """One period (plus the wrap-around sample) of sum_k amps[k] sin(2 pi (k + 1) t)."""
    a = np.frombuffer(amps, dtype=float)
    grid = 2 * np.pi * np.arange(_TABLE_SIZE + 1) / _TABLE_SIZE
    return np.sin(np.outer(grid, np.arange(1, len(a) + 1))) @ a


def _bandpass(x: np.ndarray, lo: float, hi: float, order: int = 2) -> np.ndarray:
    hi = min(hi, 0.45 * SR)
    sos = signal.butter(order, [lo, hi], btype="bandpass", fs=SR, output="sos")
    return signal.sosfilt(sos, x)


def _lowpass(x: np.ndarray, cutoff: float, order: int = 2) -> np.ndarray:
    sos = signal.butter(order, min(cutoff, 0.45 * SR), btype="lowpass", fs=SR, output="sos")
    return signal.sosfilt(sos, x)


def _resonate(x: np.ndarray, freqs: list[float], qs: list[float], gains: list[float]) -> np.ndarray:
    """Sum of second-order resonances (formants, body modes) excited by x."""
    out = np.zeros_like(x)
    for f, q, g in zip(freqs, qs, gains, strict=True):
        b, a = signal.iirpeak(min(f, 0.45 * SR), q, fs=SR)
        out += g * signal.lfilter(b, a, x)
    return out


def _envelope(n: int, attack: float, release: float) -> np.ndarray:
    """Linear attack / release envelope of n samples (times in s)."""
    env = np.ones(n)
    na, nr = min(n, max(1, int(attack * SR))), min(n, max(1, int(release * SR)))
    env[:na] *= np.linspace(0, 1, na)
    env[n - nr :] *= np.linspace(1, 0, nr)
    return env


def _smooth_noise(n: int, rate_hz: float, rng: np.random.Generator) -> np.ndarray:
    """Slow random fluctuation around 0 (unit std before interpolation), changing about `rate_hz` times/s."""
    knots = max(2, int(n / SR * rate_hz) + 2)
    return np.interp(np.arange(n), np.linspace(0, n, knots), rng.standard_normal(knots))


def _add(out: np.ndarray, x: np.ndarray, start: int) -> None:
    """Add event x into out at sample `start`, cropping what falls outside."""
    if start >= len(out) or start + len(x) <= 0:
        return
    a, b = max(0, start), min(len(out), start + len(x))
    out[a:b] += x[a - start : b - start]


# ---------------------------------------------------------------- class models


def _p_air_conditioner(rng: np.random.Generator) -> Params:
    return {
        "cutoff": _u(rng, 300, 2500),
        "mains": float(rng.choice([50.0, 60.0])),
        "hum": _u(rng, 0.05, 0.6),
        "blade_hz": _u(rng, 15, 70),
        "am_depth": _u(rng, 0.0, 0.35),
        "hiss": _u(rng, 0.0, 0.3),
    }


def _air_conditioner(p: Params, rng: np.random.Generator, n: int) -> np.ndarray:
    fan = _lowpass(rng.standard_normal(n), p["cutoff"] * (1 + 0.05 * rng.standard_normal()), order=2)
    fan /= fan.std() + 1e-9
    fan *= 1 + p["am_depth"] * np.sin(2 * np.pi * p["blade_hz"] * np.arange(n) / SR + _u(rng, 0, 6.3))
    fan *= 1 + 0.1 * _smooth_noise(n, 0.5, rng)
    hum_f = np.full(n, 2 * p["mains"]) * (1 + 0.002 * _smooth_noise(n, 0.3, rng))
    hum = _tone(hum_f, np.array([1.0, 0.5, 0.35, 0.2, 0.1]), rng)
    hiss = _bandpass(rng.standard_normal(n), 3000, 9000)
    return fan + p["hum"] * hum + p["hiss"] * hiss


def _p_car_horn(rng: np.random.Generator) -> Params:
    return {
        "f1": _u(rng, 330, 520),
        "ratio": _u(rng, 1.15, 1.3) if rng.random() < 0.7 else 1.0,
        "tilt": _u(rng, 0.3, 1.1),
        "formant": _u(rng, 1800, 3200),
    }


def _car_horn(p: Params, rng: np.random.Generator, n: int) -> np.ndarray:
    out = np.zeros(n)
    k = np.arange(1, 30)
    amps = k ** -p["tilt"]
    for _ in range(int(rng.integers(1, 4))):
        m = int(_u(rng, 0.15, 1.6) * SR)
        f = np.full(m, p["f1"]) * (1 + 0.004 * np.sin(2 * np.pi * _u(rng, 4, 9) * np.arange(m) / SR))
        honk = _tone(f, amps, rng)
        if p["ratio"] > 1.0:
            honk += _tone(f * p["ratio"], amps, rng)
        honk = np.tanh(1.5 * honk / (np.abs(honk).max() + 1e-9))
        honk += 0.6 * _resonate(honk, [p["formant"]], [4.0], [1.0])
        _add(
            out,
            honk * _envelope(m, _u(rng, 0.005, 0.02), _u(rng, 0.02, 0.06)),
            int(rng.integers(0, n - m // 2)),
        )
    return out


_VOWELS = np.array(
    [
        [730, 1090, 2440],
        [270, 2290, 3010],
        [300, 870, 2240],
        [530, 1840, 2480],
        [570, 840, 2410],
        [660, 1720, 2410],
        [440, 1020, 2240],
    ],
    dtype=float,
)


def _voice(f0: float, n_syll: int, rng: np.random.Generator, shout: bool) -> np.ndarray:
    """A babbled phrase: syllables of formant-filtered glottal pulses with a prosodic f0 contour."""
    parts = []
    for _ in range(n_syll):
        m = int(_u(rng, 0.08, 0.3 if not shout else 0.7) * SR)
        contour = f0 * (1 + _u(rng, -0.15, 0.25) * np.linspace(0, 1, m) + 0.03 * _smooth_noise(m, 8, rng))
        src = _tone(contour, np.arange(1, 40) ** -1.0, rng) + 0.15 * rng.standard_normal(m)
        formants = _VOWELS[rng.integers(len(_VOWELS))] * 1.25
        syl = _resonate(src, list(formants), [6.0, 8.0, 10.0], [1.0, 0.6, 0.3])
        parts.append(syl * _envelope(m, 0.02, 0.05))
        parts.append(np.zeros(int(_u(rng, 0.0, 0.12) * SR)))
    return np.concatenate(parts)


def _p_children_playing(rng: np.random.Generator) -> Params:
    return {
        "voices": int(rng.integers(3, 9)),
        "f0_lo": _u(rng, 230, 320),
        "f0_hi": _u(rng, 340, 450),
        "shout": _u(rng, 0.1, 0.5),
    }


def _children_playing(p: Params, rng: np.random.Generator, n: int) -> np.ndarray:
    out = np.zeros(n)
    for _ in range(p["voices"]):
        for _ in range(int(rng.integers(1, 4))):
            shout = bool(rng.random() < p["shout"])
            v = _voice(_u(rng, p["f0_lo"], p["f0_hi"]) * (1.3 if shout else 1.0), int(rng.integers(2, 8)), rng, shout)
            _add(out, v / (np.abs(v).max() + 1e-9) * _u(rng, 0.15, 1.0), int(rng.integers(-SR // 2, n)))
    return out


def _p_dog_bark(rng: np.random.Generator) -> Params:
    size = _u(rng, 0.0, 1.0)  # 0 small dog, 1 large dog
    return {
        "f0": 750 - 450 * size,
        "formants": [_u(rng, 500, 1200) * (1.3 - 0.5 * size), _u(rng, 1500, 2800) * (1.2 - 0.4 * size)],
        "harsh": _u(rng, 0.1, 0.6),
        "dur": _u(rng, 0.08, 0.25),
    }


def _dog_bark(p: Params, rng: np.random.Generator, n: int) -> np.ndarray:
    out = np.zeros(n)
    t = int(rng.integers(0, SR))
    for _ in range(int(rng.integers(1, 7))):
        m = int(p["dur"] * _u(rng, 0.8, 1.25) * SR)
        x = np.linspace(0, 1, m)
        contour = p["f0"] * _u(rng, 0.9, 1.1) * (1 + 0.15 * np.sin(np.pi * x * 0.6) - 0.35 * x**2)
        src = _tone(contour, np.arange(1, 30) ** -0.8, rng) + p["harsh"] * rng.standard_normal(m) * 2
        bark = _resonate(src, p["formants"], [4.0, 5.0], [1.0, 0.7])
        _add(out, bark * _envelope(m, 0.005, 0.6 * m / SR) * _u(rng, 0.5, 1.0), t)
        t += m + int(_u(rng, 0.12, 0.7) * SR)
    return out


def _p_drilling(rng: np.random.Generator) -> Params:
    return {
        "f0": _u(rng, 90, 260),
        "tilt": _u(rng, 0.4, 1.2),
        "gear": int(rng.integers(6, 16)),
        "noise": _u(rng, 0.1, 0.6),
        "band": _u(rng, 2000, 6000),
    }


def _drilling(p: Params, rng: np.random.Generator, n: int) -> np.ndarray:
    speed = np.zeros(n)
    t = int(rng.integers(-SR, SR // 2))
    while t < n:
        on = int(_u(rng, 1.0, 4.0) * SR)
        seg = _envelope(on, _u(rng, 0.1, 0.3), _u(rng, 0.1, 0.4)) * (
            1 - _u(rng, 0.0, 0.2) * np.clip(_smooth_noise(on, 2, rng), 0, 1)
        )
        _add(speed, seg, t)
        t += on + int(_u(rng, 0.2, 1.0) * SR)
    speed = np.clip(speed, 0, 1)
    f = p["f0"] * np.maximum(speed, 0.05)
    motor = _tone(f, np.arange(1, 40) ** -p["tilt"], rng)
    gear = _tone(f * p["gear"], np.array([1.0, 0.3]), rng)
    bit = _bandpass(rng.standard_normal(n), p["band"] / 2, p["band"] * 1.5)
    return speed * (motor + 0.4 * gear + p["noise"] * bit)


def _p_engine_idling(rng: np.random.Generator) -> Params:
    return {
        "rpm": _u(rng, 550, 1100),
        "cyl": int(rng.choice([3, 4, 6, 8])),
        "res": [_u(rng, 60, 180), _u(rng, 200, 600), _u(rng, 800, 2000)],
        "noise": _u(rng, 0.05, 0.4),
        "jitter": _u(rng, 0.01, 0.06),
        "cutoff": _u(rng, 1500, 4000),
    }


def _engine_idling(p: Params, rng: np.random.Generator, n: int) -> np.ndarray:
    rate = p["rpm"] / 60 * p["cyl"] / 2 * (1 + 0.02 * rng.standard_normal())
    drift = 1 + _u(rng, 0.0, 0.12) * _smooth_noise(n, 0.7, rng)  # governor hunting, a blip of the throttle
    pulses = np.zeros(n)
    imbalance = 1 + 0.25 * rng.standard_normal(p["cyl"])
    t, i = _u(rng, 0, SR / rate), 0
    while t < n:
        pulses[int(t)] = imbalance[i % p["cyl"]] * (1 + 0.15 * rng.standard_normal())
        t += SR / (rate * max(drift[int(t)], 0.5)) * (1 + p["jitter"] * rng.standard_normal())
        i += 1
    body = _resonate(pulses, p["res"], [3.0, 4.0, 6.0], [1.0, 0.6, 0.25])
    rumble = _lowpass(rng.standard_normal(n), 300) * p["noise"] * 0.05
    return _lowpass(body + rumble, p["cutoff"])


def _p_gun_shot(rng: np.random.Generator) -> Params:
    return {
        "blast": _u(rng, 0.003, 0.015),
        "body": _u(rng, 1000, 6000),
        "thump": _u(rng, 60, 200),
        "tail": _u(rng, 0.15, 1.2),
        "tail_level": _u(rng, 0.05, 0.4),
        "echo": _u(rng, 0.05, 0.4),
        "burst": bool(rng.random() < 0.3),
    }


def _gun_shot(p: Params, rng: np.random.Generator, n: int) -> np.ndarray:
    out = np.zeros(n)
    m = int((p["tail"] * 3 + 0.05) * SR)
    tt = np.arange(m) / SR
    t = int(rng.integers(0, 2 * SR))
    for _ in range(int(rng.integers(1, 5))):
        blast = rng.standard_normal(m) * np.exp(-tt / p["blast"])
        blast = _lowpass(blast, p["body"]) + 0.6 * np.sin(2 * np.pi * p["thump"] * tt) * np.exp(-tt / 0.03)
        tail = _lowpass(rng.standard_normal(m), p["body"] / 2) * np.exp(-tt / p["tail"]) * p["tail_level"]
        shot = blast + tail
        shot[int(p["echo"] * SR) :] += 0.3 * shot[: m - int(p["echo"] * SR)]
        _add(out, shot * _u(rng, 0.6, 1.0), t)
        t += int((_u(rng, 0.07, 0.15) if p["burst"] else _u(rng, 0.3, 1.5)) * SR)
    return out


def _p_jackhammer(rng: np.random.Generator) -> Params:
    return {
        "rate": _u(rng, 14, 28),
        "modes": [_u(rng, 800, 1800), _u(rng, 1800, 3200), _u(rng, 3200, 5000)],
        "decay": _u(rng, 0.01, 0.04),
        "thump": _u(rng, 60, 150),
        "hum": _u(rng, 0.0, 0.3),
    }


def _jackhammer(p: Params, rng: np.random.Generator, n: int) -> np.ndarray:
    m = int(0.2 * SR)
    tt = np.arange(m) / SR
    thump = 2 * np.sin(2 * np.pi * p["thump"] * tt) * np.exp(-tt / 0.015)
    hits = [  # a few distinct impacts per clip, reused: the tool strikes the same way every time
        _resonate(rng.standard_normal(m) * np.exp(-tt / 0.002), p["modes"], [30.0, 40.0, 50.0], [1.0, 0.7, 0.4])
        * np.exp(-tt / p["decay"])
        + thump
        for _ in range(4)
    ]
    out = np.zeros(n)
    t = int(rng.integers(-SR, SR // 2))
    while t < n:
        stop = t + int(_u(rng, 1.5, 4.0) * SR)
        while t < min(stop, n):
            _add(out, hits[int(rng.integers(len(hits)))] * _u(rng, 0.7, 1.0), t)
            t += int(SR / p["rate"] * (1 + 0.03 * rng.standard_normal()))
        t = stop + int(_u(rng, 0.2, 1.0) * SR)
    out /= np.abs(out).max() + 1e-9
    return out + p["hum"] * _lowpass(rng.standard_normal(n), 400) * 0.2


def _p_siren(rng: np.random.Generator) -> Params:
    kind = str(rng.choice(["wail", "yelp", "hilo"]))
    period = {"wail": _u(rng, 2.5, 6.0), "yelp": _u(rng, 0.15, 0.4), "hilo": _u(rng, 0.8, 1.5)}[kind]
    lo = _u(rng, 450, 800)
    return {
        "kind": kind,
        "lo": lo,
        "hi": lo * _u(rng, 1.7, 2.6),
        "period": period,
        "tilt": _u(rng, 0.6, 1.6),
        "odd": bool(rng.random() < 0.5),
    }


def _siren(p: Params, rng: np.random.Generator, n: int) -> np.ndarray:
    t = np.arange(n) / SR
    ph = t / p["period"] + _u(rng, 0, 1)
    if p["kind"] == "wail":
        shape = 0.5 - 0.5 * np.cos(2 * np.pi * ph)
    elif p["kind"] == "yelp":
        shape = ph % 1.0
    else:
        shape = (ph % 1.0 < 0.5).astype(float) * 0.6 + 0.2
    doppler = 1 + _u(rng, -0.03, 0.03) * np.linspace(-1, 1, n)
    f = (p["lo"] + (p["hi"] - p["lo"]) * shape) * doppler
    k = np.arange(1, 25)
    amps = k ** -p["tilt"] * (((k % 2) == 1) if p["odd"] else 1.0)
    return _tone(f, amps, rng) * (1 + 0.3 * _smooth_noise(n, 0.5, rng)).clip(0.2)


def _p_street_music(rng: np.random.Generator) -> Params:
    return {
        "bpm": _u(rng, 80, 140),
        "root": _u(rng, 110, 330),
        "minor": bool(rng.random() < 0.5),
        "tilt": _u(rng, 0.7, 2.0),
        "pluck": bool(rng.random() < 0.6),
        "drums": bool(rng.random() < 0.7),
        "bass": bool(rng.random() < 0.6),
    }


def _note(freq: float, m: int, tilt: float, pluck: bool, rng: np.random.Generator) -> np.ndarray:
    tone = _tone(np.full(m, freq), np.arange(1, 20) ** -tilt, rng)
    env = np.exp(-np.arange(m) / (0.25 * SR)) if pluck else _envelope(m, 0.03, 0.08)
    return tone * env


def _street_music(p: Params, rng: np.random.Generator, n: int) -> np.ndarray:
    scale = np.array([0, 3, 5, 7, 10] if p["minor"] else [0, 2, 4, 7, 9])
    beat = int(60 / p["bpm"] * SR)
    out = np.zeros(n)
    tt = np.arange(beat) / SR
    for b in range(-1, n // beat + 2):
        start = b * beat + int(rng.integers(0, beat // 4))
        for half in range(2):
            if rng.random() < 0.8:
                degree = scale[rng.integers(len(scale))] + 12 * int(rng.integers(0, 2))
                _add(
                    out,
                    _note(p["root"] * 2 ** (degree / 12), beat, p["tilt"], p["pluck"], rng) * 0.5,
                    start + half * beat // 2,
                )
        if p["bass"] and b % 2 == 0:
            _add(
                out,
                _note(p["root"] / 2 * 2 ** (scale[rng.integers(3)] / 12), 2 * beat, 1.5, True, rng) * 0.6,
                b * beat,
            )
        if p["drums"]:
            if b % 2 == 0:
                _add(
                    out,
                    np.sin(2 * np.pi * (60 + 80 * np.exp(-tt / 0.03)) * tt) * np.exp(-tt / 0.08),
                    b * beat,
                )
            else:
                _add(out, _bandpass(rng.standard_normal(beat), 800, 5000) * np.exp(-tt / 0.05) * 0.5, b * beat)
            hat = _bandpass(rng.standard_normal(beat // 2), 6000, 10000) * np.exp(-tt[: beat // 2] / 0.01) * 0.3
            _add(out, hat, b * beat)
            _add(out, hat, b * beat + beat // 2)
    return out


_MODELS: dict[str, tuple[Callable[[np.random.Generator], Params], Callable[..., np.ndarray]]] = {
    "air_conditioner": (_p_air_conditioner, _air_conditioner),
    "car_horn": (_p_car_horn, _car_horn),
    "children_playing": (_p_children_playing, _children_playing),
    "dog_bark": (_p_dog_bark, _dog_bark),
    "drilling": (_p_drilling, _drilling),
    "engine_idling": (_p_engine_idling, _engine_idling),
    "gun_shot": (_p_gun_shot, _gun_shot),
    "jackhammer": (_p_jackhammer, _jackhammer),
    "siren": (_p_siren, _siren),
    "street_music": (_p_street_music, _street_music),
}


def draw_params(label: str, rng: np.random.Generator) -> Params:
    """Physical parameters of one virtual source of class `label` (JSON-able dict)."""
    if label not in _MODELS:
        raise MemgruError(f"no sound model for class {label!r}; known: {', '.join(LABELS)}")
    return _MODELS[label][0](rng)


def render(label: str, params: Params, rng: np.random.Generator, seconds: float = 4.0) -> np.ndarray:
    """One clip (float32, 22.05 kHz, peak 1.0) of the virtual source `params` of class `label`."""
    if label not in _MODELS:
        raise MemgruError(f"no sound model for class {label!r}; known: {', '.join(LABELS)}")
    x = _MODELS[label][1](params, rng, int(seconds * SR))
    peak = float(np.abs(x).max())
    if not np.isfinite(peak) or peak == 0:
        raise MemgruError(f"sound model {label} produced an empty clip for parameters {params}")
    return (x / peak).astype(np.float32)
