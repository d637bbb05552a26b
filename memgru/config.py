"""Configuration dataclasses: quantization, device (crossbar hardware), model and training.

Every field carries a docstring right under it (units in brackets). Construction validates
the values, so an impossible configuration fails early with one clear `MemgruError`
(a `ValueError`). Presets are classmethods that only change defaults.

Example:
    >>> from memgru.config import QuantConfig, DeviceConfig
    >>> q = QuantConfig(weight_bits=6, act_bits=8)
    >>> q.weight_float, q.levels_per_device
    (False, 32)
    >>> DeviceConfig.rram_1t1r().rows
    128
"""

from __future__ import annotations

import dataclasses
import json
from dataclasses import dataclass, field
from typing import Any, Literal

from memgru.errors import MemgruError

FLOAT_BITS = 32
"""Bit width that means "no quantization" (full precision float) in configs and on the CLI."""
NOISE_SCALES = ("matrix", "row")
"""What the training weight-noise η is relative to: the whole matrix's max|W|, or each output row's max|W|."""

ACT_POINTS = ("input", "preact", "gate")
"""Where activations can be quantized: `input` = values driven onto crossbar rows (x_t and h_{t-1},
through the DAC); `preact` = gate pre-activations entering the sigmoid/tanh periphery;
`gate` = the outputs of the sigmoid/tanh periphery."""


def _check_bits(name: str, bits: int, low: int = 2, high: int = 16) -> None:
    if isinstance(bits, bool) or not isinstance(bits, int):
        raise MemgruError(f"{name} must be an integer, got {bits!r}")
    if bits != FLOAT_BITS and not low <= bits <= high:
        raise MemgruError(f"{name} must be {low}..{high} or {FLOAT_BITS} (float), got {bits}")


def _check_fraction(name: str, value: float, high: float = 1.0) -> None:
    if not isinstance(value, int | float) or value != value or not 0.0 <= value <= high:
        raise MemgruError(f"{name} must be a number in [0, {high}], got {value!r}")


class _JsonConfig:
    """Mixin: round trip a dataclass through a plain dict / JSON."""

    def to_dict(self) -> dict[str, Any]:
        """Plain-dict form (JSON-able) of the config."""
        return dataclasses.asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Any:
        """Build the config from a dict; unknown keys are an error (typos must not pass silently)."""
        if not isinstance(data, dict):
            raise MemgruError(f"{cls.__name__} must be a JSON object, got {type(data).__name__}")
        names = {f.name for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - names)
        if unknown:
            raise MemgruError(f"unknown {cls.__name__} field(s): {', '.join(unknown)}")
        values = {k: tuple(v) if isinstance(v, list) else v for k, v in data.items()}
        return cls(**values)

    def to_json(self) -> str:
        """Indented JSON text of the config."""
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)


@dataclass(frozen=True)
class QuantConfig(_JsonConfig):
    """Precision of weights (symmetric) and activations (asymmetric).

    Example:
        >>> QuantConfig(weight_bits=4).weight_levels   # levels -7..7
        7
    """

    weight_bits: int = FLOAT_BITS
    """Weight precision [bits], 2..16, or 32 for float. Symmetric integer levels -(2^(b-1)-1)..2^(b-1)-1."""
    act_bits: int = FLOAT_BITS
    """Activation precision [bits], 2..16, or 32 for float. Asymmetric: 2^b levels over a calibrated range."""
    per_channel: bool = True
    """One weight scale per output channel (crossbar column pair) instead of one per matrix."""
    act_points: tuple[str, ...] = ACT_POINTS
    """Which activations are quantized when act_bits < 32; a subset of `ACT_POINTS`."""
    act_percentile: float = 100.0
    """Calibrated activation range = [100 - p, p] percentiles of the observed values (widened over
    calibration batches); 100 = min/max. Lower values clip rare outliers to gain resolution."""
    gate_bits: int | None = None
    """Precision of the gate outputs r, z, n [bits] (the sigmoid/tanh table's output word) when they
    are quantized; None = `act_bits`. A GRU that integrates over hours (SOC) needs z within ~1e-3 of 1,
    which 8 bits (steps of 1/255) cannot hold."""

    def __post_init__(self) -> None:
        _check_bits("weight_bits", self.weight_bits)
        _check_bits("act_bits", self.act_bits)
        if self.gate_bits is not None:
            _check_bits("gate_bits", self.gate_bits)
        if not isinstance(self.act_percentile, int | float) or not 50.0 < self.act_percentile <= 100.0:
            raise MemgruError(f"act_percentile must be in (50, 100], got {self.act_percentile!r}")
        bad = [p for p in self.act_points if p not in ACT_POINTS]
        if bad:
            raise MemgruError(f"unknown act_points {bad}; choose from {list(ACT_POINTS)}")

    @property
    def weight_float(self) -> bool:
        """True when weights are kept at full precision."""
        return self.weight_bits == FLOAT_BITS

    @property
    def weight_levels(self) -> int:
        """Largest integer weight level 2^(b-1) - 1 (0 for float weights)."""
        return 0 if self.weight_float else 2 ** (self.weight_bits - 1) - 1

    @property
    def levels_per_device(self) -> int:
        """Conductance states one device of a differential pair needs: 2^(b-1) (0 for float)."""
        return 0 if self.weight_float else 2 ** (self.weight_bits - 1)

    def act_bits_at(self, point: str) -> int:
        """Bits used at activation point `point` (32 = not quantized)."""
        if point not in self.act_points or self.act_bits >= FLOAT_BITS:
            return FLOAT_BITS
        return self.gate_bits if point == "gate" and self.gate_bits is not None else self.act_bits


@dataclass(frozen=True)
class DeviceConfig(_JsonConfig):
    """The crossbar hardware: conductance window, states, array size, non-idealities, periphery.

    Presets: `DeviceConfig.ideal()` (every non-ideality off, unlimited states) and
    `DeviceConfig.rram_1t1r()` (typical 1T1R RRAM, see its docstring for sources).
    """

    g_min: float = 1.0
    """Lowest programmable conductance, high-resistance state (HRS) [µS]."""
    g_max: float = 100.0
    """Highest programmable conductance, low-resistance state (LRS) [µS]."""
    states: int = 2**16
    """Distinguishable conductance states per device (levels between g_min and g_max inclusive)."""
    slicing: Literal["bitslice", "refuse"] = "bitslice"
    """When b-bit weights need more than `states` levels per device: `bitslice` spreads each weight
    over several device pairs (base-`states` digits, shift-and-add after the ADC); `refuse` raises."""
    rows: int = 128
    """Rows (inputs) of one physical array; larger matrices are tiled."""
    cols: int = 128
    """Columns of one physical array; each output uses two (a differential pair), so cols/2 outputs."""
    prog_sigma: float = 0.0
    """Programming variation: std of the written conductance as a fraction of (g_max - g_min);
    sampled once per programming of the chip."""
    read_sigma: float = 0.0
    """Read noise: std of each device's conductance per read (per MVM) as a fraction of (g_max - g_min)."""
    stuck_hrs: float = 0.0
    """Fraction of devices stuck at g_min (HRS) whatever is written."""
    stuck_lrs: float = 0.0
    """Fraction of devices stuck at g_max (LRS) whatever is written."""
    drift_nu: float = 0.0
    """Conductance drift exponent ν in G(t) = G0 (t / t0)^-ν."""
    drift_nu_std: float = 0.0
    """Device-to-device std of ν (each device draws its own exponent, clipped at 0)."""
    drift_time: float = 1.0
    """Time since programming at which the chip is read, t [s]; t <= t0 means no drift."""
    drift_t0: float = 1.0
    """Reference time of the drift law, t0 [s] (when the programmed value G0 holds)."""
    drift_compensation: bool = True
    """Rescale each array's outputs by the mean drift factor (global drift compensation)."""
    adc_bits: int = FLOAT_BITS
    """ADC resolution on each tile's partial sums [bits], 2..16, or 32 for ideal (no ADC quantization)."""
    dac_bits: int = FLOAT_BITS
    """DAC resolution of row inputs [bits], 2..16, or 32; inputs use min(act_bits, dac_bits)."""
    bias: Literal["digital", "row"] = "digital"
    """Bias handling: `digital` adds it after the ADC at full precision; `row` programs it as an
    extra crossbar row driven by a constant input (quantized and noisy like the weights)."""
    activation_circuit: Literal["lut", "pwl"] = "lut"
    """How the periphery computes sigmoid/tanh: `lut` = exact function sampled at the quantized
    input (digital look-up table); `pwl` = piecewise-linear analog approximation (hard sigmoid/tanh)."""

    def __post_init__(self) -> None:
        if not (isinstance(self.g_min, int | float) and isinstance(self.g_max, int | float)):
            raise MemgruError("g_min and g_max must be numbers [µS]")
        if not 0.0 <= self.g_min < self.g_max:
            raise MemgruError(f"need 0 <= g_min < g_max [µS], got g_min={self.g_min}, g_max={self.g_max}")
        if isinstance(self.states, bool) or not isinstance(self.states, int) or self.states < 2:
            raise MemgruError(f"states per device must be an integer >= 2, got {self.states!r}")
        for name in ("rows", "cols"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise MemgruError(f"array {name} must be a positive integer, got {value!r}")
        if self.cols < 2 or self.cols % 2:
            raise MemgruError(f"array cols must be even and >= 2 (differential pairs), got {self.cols}")
        if self.slicing not in ("bitslice", "refuse"):
            raise MemgruError(f"slicing must be 'bitslice' or 'refuse', got {self.slicing!r}")
        for name in ("prog_sigma", "read_sigma"):
            _check_fraction(name, getattr(self, name))
        _check_fraction("stuck_hrs", self.stuck_hrs)
        _check_fraction("stuck_lrs", self.stuck_lrs)
        if self.stuck_hrs + self.stuck_lrs > 1.0:
            raise MemgruError("stuck_hrs + stuck_lrs must not exceed 1")
        _check_fraction("drift_nu", self.drift_nu)
        _check_fraction("drift_nu_std", self.drift_nu_std)
        if not self.drift_time > 0 or not self.drift_t0 > 0:
            raise MemgruError("drift_time and drift_t0 must be > 0 seconds")
        _check_bits("adc_bits", self.adc_bits)
        _check_bits("dac_bits", self.dac_bits)
        if self.bias not in ("digital", "row"):
            raise MemgruError(f"bias must be 'digital' or 'row', got {self.bias!r}")
        if self.activation_circuit not in ("lut", "pwl"):
            raise MemgruError(f"activation_circuit must be 'lut' or 'pwl', got {self.activation_circuit!r}")

    @property
    def outputs_per_array(self) -> int:
        """Outputs (differential column pairs) one array holds."""
        return self.cols // 2

    def replace(self, **changes: Any) -> DeviceConfig:
        """A copy with some fields changed (validated)."""
        return dataclasses.replace(self, **changes)

    @classmethod
    def ideal(cls, **changes: Any) -> DeviceConfig:
        """Every non-ideality off: exact conductances, no noise, no faults, no drift, ideal ADC/DAC,
        2^16 states per device. With 16-bit weights and activations it reproduces the float model."""
        return cls(**changes)

    @classmethod
    def rram_1t1r(cls, **changes: Any) -> DeviceConfig:
        """Typical 1T1R RRAM crossbar, values of the order reported in published hardware work:

        - conductance window of a few to tens of µS (here 2-20 µS) and multi-level programming with
          write-verify (32 states, 5 bits per device): Yao et al., Nature 577, 641 (2020);
          Li et al., Nature Electronics 1, 52 (2018);
        - 128 x 128 arrays, 8-bit ADC / DAC periphery: Wan et al., "A compute-in-memory chip based on
          resistive random-access memory", Nature 608, 504 (2022) (NeuRRAM, 256 x 256 cores);
        - programming error after write-verify about 2 % of the window, read noise below 1 %,
          stuck devices well under 1 % (Li et al. 2018; Yao et al. 2020);
        - RRAM drift is weak compared with PCM (ν of order 0.005; PCM ~0.05, Ambrogio et al.,
          Nature 558, 60 (2018)); read one day after programming, global drift compensation on.
        """
        base = dict(
            g_min=2.0, g_max=20.0, states=32, slicing="bitslice", rows=128, cols=128,
            prog_sigma=0.02, read_sigma=0.005, stuck_hrs=0.005, stuck_lrs=0.001,
            drift_nu=0.005, drift_nu_std=0.002, drift_time=86400.0, drift_t0=1.0,
            drift_compensation=True, adc_bits=8, dac_bits=8, bias="digital", activation_circuit="lut",
        )
        base.update(changes)
        return cls(**base)

    @classmethod
    def preset(cls, name: str, **changes: Any) -> DeviceConfig:
        """A preset by name: `ideal` or `rram_1t1r`."""
        presets = {"ideal": cls.ideal, "rram_1t1r": cls.rram_1t1r}
        if name not in presets:
            raise MemgruError(f"unknown device preset {name!r}; choose from {sorted(presets)}")
        return presets[name](**changes)


@dataclass(frozen=True)
class ModelConfig(_JsonConfig):
    """Architecture of a task model (built by `memgru.models.build_model`)."""

    kind: Literal["gru_classifier", "gru_regressor", "dilated_cnn"] = "gru_classifier"
    """Model family: GRU classifier (one label per sequence), GRU regressor (one value per step),
    or the Dilated-Convolution baseline classifier."""
    n_features: int = 64
    """Input features per time step."""
    n_outputs: int = 10
    """Classes (classifier) or regression targets per step (regressor)."""
    hidden: int = 384
    """GRU hidden size (or conv channels for the baseline)."""
    layers: int = 2
    """Stacked GRU layers (or dilated conv blocks for the baseline)."""
    dropout: float = 0.1
    """Dropout between layers and before the head, in training only."""
    pooling: Literal["last", "mean"] = "mean"
    """Classifier readout over time: last hidden state or mean over steps."""

    def __post_init__(self) -> None:
        if self.kind not in ("gru_classifier", "gru_regressor", "dilated_cnn"):
            raise MemgruError(f"unknown model kind {self.kind!r}")
        for name in ("n_features", "n_outputs", "hidden", "layers"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise MemgruError(f"model {name} must be a positive integer, got {value!r}")
        _check_fraction("dropout", self.dropout, high=0.9)
        if self.pooling not in ("last", "mean"):
            raise MemgruError(f"pooling must be 'last' or 'mean', got {self.pooling!r}")


@dataclass(frozen=True)
class TrainConfig(_JsonConfig):
    """Training hyper-parameters (one seed makes a run reproducible)."""

    epochs: int = 20
    """Passes over the training split."""
    batch_size: int = 64
    """Sequences per optimizer step."""
    lr: float = 2e-3
    """AdamW learning rate."""
    weight_decay: float = 1e-4
    """AdamW weight decay."""
    weight_noise: float = 0.0
    """Weight-noise injection η: W + N(0, (η·max|W|)^2) per forward pass in training (0 = off)."""
    qat_weight_bits: int = FLOAT_BITS
    """Weight bits simulated during training (quantization-aware training); 32 = float training."""
    qat_act_bits: int = FLOAT_BITS
    """Activation bits simulated during training; 32 = float."""
    grad_clip: float = 1.0
    """Max gradient norm."""
    seed: int = 0
    """Seed for initialisation, shuffling, dropout and noise."""
    patience: int = 0
    """Early stopping after this many epochs without validation improvement (0 = off)."""
    tbptt_steps: int = 0
    """Truncated back-propagation through time for per-step regression (SOC): each batch of long
    training sequences is run in chunks of this many steps, the hidden state carried from chunk to
    chunk (detached) and one optimizer step per chunk, so the model learns to track a whole recording
    without back-propagating through all of it (0 = off: one step per batch over whole sequences)."""
    noise_scale: str = "matrix"
    """What η is relative to: "matrix" = the whole matrix's max|W|; "row" = each output row's max|W|, the
    full scale a per-channel-quantized row is programmed with (η ≈ 1.2·σ then mimics programming variation σ,
    see `memgru.quant.inject_weight_noise`)."""
    val_noise_draws: int = 3
    """Noise runs (weight_noise > 0) keep the epoch with the best validation metric averaged over this many
    fixed, seeded draws of the training weight noise (the same draws every epoch): the condition the run
    trains for. 0 = select on the clean validation metric, as float runs always do."""

    def __post_init__(self) -> None:
        if self.epochs < 1 or self.batch_size < 1:
            raise MemgruError("epochs and batch_size must be >= 1")
        if self.tbptt_steps < 0:
            raise MemgruError(f"tbptt_steps must be >= 0, got {self.tbptt_steps}")
        if isinstance(self.val_noise_draws, bool) or not isinstance(self.val_noise_draws, int) \
                or self.val_noise_draws < 0:
            raise MemgruError(f"val_noise_draws must be an integer >= 0, got {self.val_noise_draws!r}")
        if self.noise_scale not in NOISE_SCALES:
            raise MemgruError(f"noise_scale must be one of {', '.join(NOISE_SCALES)}, got {self.noise_scale!r}")
        if not self.lr > 0:
            raise MemgruError(f"lr must be > 0, got {self.lr}")
        _check_fraction("weight_noise", self.weight_noise)
        _check_bits("qat_weight_bits", self.qat_weight_bits)
        _check_bits("qat_act_bits", self.qat_act_bits)


@dataclass(frozen=True)
class ExperimentConfig(_JsonConfig):
    """Everything `python -m memgru train` needs: task, model and training settings."""

    task: str = "audio"
    """Task name: audio, trajectory or soc."""
    model: ModelConfig = field(default_factory=ModelConfig)
    """The architecture."""
    train: TrainConfig = field(default_factory=TrainConfig)
    """The training run."""

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ExperimentConfig:
        """Build from a nested dict (as written by `to_dict`)."""
        if not isinstance(data, dict):
            raise MemgruError("experiment config must be a JSON object")
        unknown = sorted(set(data) - {"task", "model", "train"})
        if unknown:
            raise MemgruError(f"unknown experiment config field(s): {', '.join(unknown)}")
        return cls(
            task=str(data.get("task", "audio")),
            model=ModelConfig.from_dict(data.get("model", {})),
            train=TrainConfig.from_dict(data.get("train", {})),
        )
