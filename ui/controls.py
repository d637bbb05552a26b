"""The shared sidebar: hardware settings every page reads, kept in session state across pages.

`sidebar()` draws the controls and returns a `Settings`; `settings_from_values` is the pure mapping
from widget values to memgru configs (tested without Streamlit).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

import streamlit as st

from memgru.config import FLOAT_BITS, DeviceConfig, QuantConfig
from memgru.errors import MemgruError
from memgru.layers import describe

FLOAT = "float"
"""Widget value meaning full precision (32 bits)."""
OFF = "off"
"""Widget value meaning no input noise."""
BIT_OPTIONS: list[int | str] = [*range(2, 17), FLOAT]
"""Choices of the weight- and activation-bit sliders."""
SNR_OPTIONS: list[int | str] = [OFF, 40, 30, 20, 15, 10, 5, 0, -5]
"""Choices of the input-SNR slider [dB], from clean to very noisy."""
PRESETS = ("rram_1t1r", "ideal")
"""Device presets offered (see `DeviceConfig.preset`)."""
IMAGE_FORMATS = ("png", "svg")
"""Formats of the plotly toolbar's camera button."""
SAME = "as activations"
"""Widget value of the gate-output bits meaning: the activation bits."""
GATE_OPTIONS: list[int | str] = [SAME, *range(2, 17)]
"""Choices of the gate-output-bits slider."""
DEFAULTS: dict[str, Any] = {
    "weight_bits": 6, "act_bits": 8, "gate_bits": SAME, "sigma": 0.02, "snr_db": OFF, "preset": "rram_1t1r",
    "seed": 0, "image_format": "png",
}
"""Session-state keys of the shared controls and their start values."""


@dataclass(frozen=True)
class Settings:
    """The hardware and input setting chosen in the sidebar."""

    quant: QuantConfig
    """Weight and activation precision."""
    device: DeviceConfig
    """The device preset with the chosen programming variation σ."""
    preset: str
    """Name of the device preset."""
    snr_db: float | None
    """Input-noise SNR [dB]; None = no input noise."""
    seed: int
    """Device seed (programming variation, stuck devices, read noise)."""

    @property
    def sigma(self) -> float:
        """Programming variation σ as a fraction of the conductance window."""
        return self.device.prog_sigma

    def label(self) -> str:
        """One line describing the setting, e.g. 'W6/A8 · rram_1t1r, σ = 0.020 · input SNR off · seed 0'."""
        snr = OFF if self.snr_db is None else f"{self.snr_db:g} dB"
        return f"{describe(self.quant)} · {self.preset}, σ = {self.sigma:.3f} · input SNR {snr} · seed {self.seed}"


def _bits(value: int | str, name: str) -> int:
    if value == FLOAT:
        return FLOAT_BITS
    if isinstance(value, bool) or not isinstance(value, int):
        raise MemgruError(f"{name} must be 2..16 or 'float', got {value!r}")
    return value


def settings_from_values(values: Mapping[str, Any]) -> Settings:
    """Settings from the control values (as kept in session state); bad values raise MemgruError."""
    gate = values.get("gate_bits", SAME)
    quant = QuantConfig(weight_bits=_bits(values["weight_bits"], "weight bits"),
                        act_bits=_bits(values["act_bits"], "activation bits"),
                        gate_bits=None if gate == SAME else _bits(gate, "gate-output bits"))
    preset = values["preset"]
    device = DeviceConfig.preset(preset, prog_sigma=round(float(values["sigma"]), 6))  # 0.025, not 0.02500000001
    snr = values["snr_db"]
    if snr != OFF and (isinstance(snr, bool) or not isinstance(snr, int | float)):
        raise MemgruError(f"input SNR must be a number of dB or 'off', got {snr!r}")
    seed = values["seed"]
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise MemgruError(f"device seed must be a non-negative integer, got {seed!r}")
    return Settings(quant=quant, device=device, preset=preset, snr_db=None if snr == OFF else float(snr), seed=seed)


CHOICES: dict[str, tuple[Any, ...]] = {
    "weight_bits": tuple(BIT_OPTIONS), "act_bits": tuple(BIT_OPTIONS), "gate_bits": tuple(GATE_OPTIONS),
    "snr_db": tuple(SNR_OPTIONS),
    "preset": PRESETS, "image_format": IMAGE_FORMATS,
}
"""Allowed values of the controls with a fixed list of choices."""


SIGMA_STEP = 0.005
"""Step of the σ slider."""


def neighbour_values(values: Mapping[str, Any]) -> list[dict[str, Any]]:
    """The control values one step away from `values` that a user most likely picks next, most likely first:
    weight bits one notch down and up, the next device seed, activation bits down and up, σ one step up and
    down (`ui.prefetch` computes their chips ahead). Only valid settings; `values` itself is not included."""
    out: list[dict[str, Any]] = []

    def step(key: str, options: Sequence[Any], delta: int) -> None:
        if values.get(key) in options:
            i = list(options).index(values[key]) + delta
            if 0 <= i < len(options):
                out.append({**values, key: options[i]})

    step("weight_bits", BIT_OPTIONS, -1)
    step("weight_bits", BIT_OPTIONS, +1)
    seed = values.get("seed")
    if _allowed("seed", seed) and _allowed("seed", seed + 1):
        out.append({**values, "seed": seed + 1})
    step("act_bits", BIT_OPTIONS, -1)
    step("act_bits", BIT_OPTIONS, +1)
    sigma = values.get("sigma")
    if _allowed("sigma", sigma):
        for delta in (SIGMA_STEP, -SIGMA_STEP):
            moved = round(float(sigma) + delta, 6)
            if _allowed("sigma", moved):
                out.append({**values, "sigma": moved})
    return out


def _allowed(key: str, value: Any) -> bool:
    if key in CHOICES:
        return value in CHOICES[key] and not isinstance(value, bool)
    if key == "sigma":
        return isinstance(value, int | float) and 0.0 <= value <= 0.2
    return isinstance(value, int) and not isinstance(value, bool) and 0 <= value < 2**31


def keep_state() -> list[str]:
    """Put the defaults into session state, keep the values across pages, and reset impossible ones.

    Streamlit forgets a widget's value once a run does not draw it (a page change); writing each
    value back to session state makes it a plain session value that the next page's widget picks up.
    Returns one message per value that was impossible (and is now back at its default).
    """
    problems = []
    for key, value in DEFAULTS.items():
        st.session_state.setdefault(key, value)
        if not _allowed(key, st.session_state[key]):
            problems.append(f"{key} = {st.session_state[key]!r} is not a valid choice; reset to {value!r}")
            st.session_state[key] = value
        st.session_state[key] = st.session_state[key]
    return problems


def choose(label: str, options: Sequence[Any], key: str, container: Any = st, **kwargs: Any) -> Any:
    """A selectbox whose options depend on other choices: a stored value that is no longer offered
    falls back to the first option instead of failing."""
    if st.session_state.get(key) not in options:
        st.session_state[key] = options[0]
    return container.selectbox(label, options, key=key, **kwargs)


def sidebar() -> Settings:
    """Draw the shared hardware controls in the sidebar and return the chosen setting.

    Impossible stored values are reported with an error message and reset to their defaults.
    """
    for problem in keep_state():
        st.error(f"Invalid setting: {problem}")
    bar = st.sidebar
    bar.header("Crossbar setting")
    bar.select_slider("Weight bits", BIT_OPTIONS, key="weight_bits",
                      help="Symmetric weight precision; 'float' keeps full precision.")
    bar.select_slider("Activation bits", BIT_OPTIONS, key="act_bits",
                      help="Asymmetric precision of crossbar inputs, gate pre-activations and gate outputs.")
    bar.select_slider("Gate-output bits", GATE_OPTIONS, key="gate_bits",
                      help="Precision of the gate outputs r, z, n (the sigmoid/tanh table's output word) when "
                           "activations are quantized. A GRU that integrates over hours (battery SOC) needs its "
                           "update gate within ~0.001 of 1: 8 bits cannot hold that, 10 can.")
    bar.slider("Programming variation σ", 0.0, 0.2, step=SIGMA_STEP, format="%.3f", key="sigma",
               help="Std of the written conductance as a fraction of (g_max − g_min), sampled once per chip.")
    bar.select_slider("Input SNR (dB)", SNR_OPTIONS, key="snr_db",
                      help="White noise added to the input signal at this signal-to-noise ratio; 'off' = clean.")
    bar.selectbox("Device preset", PRESETS, key="preset",
                  help="rram_1t1r: 2–20 µS, 32 states, 128×128 arrays, read noise, stuck devices, drift, "
                       "8-bit ADC/DAC. ideal: every non-ideality off except the σ above.")
    bar.number_input("Device seed", min_value=0, max_value=2**31 - 1, step=1, key="seed",
                     help="Seeds programming variation, stuck devices and read noise: the same seed, the same chip.")
    with bar.expander("Figure export"):
        st.radio("Toolbar camera saves", IMAGE_FORMATS, key="image_format", horizontal=True,
                 help="Format of the camera button in each figure's toolbar (client side).")
    settings = settings_from_values(st.session_state)
    bar.caption(settings.label())
    return settings
