"""Weight <-> conductance mapping on differential 1T1R pairs, tiling, non-idealities and the noisy MVM.

A weight matrix W [out, in] is programmed column-pair per output: w ∝ G+ − G−, G in [g_min, g_max].
b-bit symmetric weights have integer levels q in −qmax..qmax (qmax = 2^(b−1) − 1); |q| is written on
G+ (q > 0) or G− (q < 0) while the other device stays at g_min, so each device needs qmax + 1 = 2^(b−1)
states. When the device has fewer states, |q| is split into base-`states` digits over several device
pairs ("slices") whose ADC outputs are shifted and added. Everything is computed in the *level domain*:
(G+ − G−) / Δg, with Δg the conductance step of one level; a per-output scale turns levels into weights
after the ADC (digitally).

Example:
    >>> import torch
    >>> from memgru.config import QuantConfig, DeviceConfig
    >>> w = torch.tensor([[0.3, -0.6], [0.0, 0.9]])
    >>> m = weight_to_conductance(w, QuantConfig(weight_bits=4), DeviceConfig.rram_1t1r())
    >>> m.g_pos.shape, m.n_slices                      # [slices, out, in]
    (torch.Size([1, 2, 2]), 1)
    >>> torch.allclose(conductance_to_weight(m).float(), w, atol=float(m.scale.max()) / 2)
    True
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np
import torch

from memgru.config import FLOAT_BITS, DeviceConfig, QuantConfig
from memgru.errors import MemgruError
from memgru.quant import quantize_weight

STUCK_NONE, STUCK_HRS, STUCK_LRS = 0, 1, 2
"""Codes in the stuck-device masks."""
NOISE_BLOCK_SAMPLES = 2**21
"""Read-noise samples drawn at a time (for several MVMs of one shape; at least one MVM's worth)."""


@dataclass
class ConductanceMap:
    """Target conductances of one matrix (before non-idealities) and what is needed to read it back."""

    g_pos: torch.Tensor
    """G+ per slice [S, out, rows] in µS."""
    g_neg: torch.Tensor
    """G− per slice [S, out, rows] in µS."""
    scale: torch.Tensor
    """Weight value of one level, per output [out] (the digital gain after the ADC)."""
    step: float
    """Conductance of one level, Δg [µS]."""
    base: int
    """Radix between slices: slice k carries digit weight base^k (1 slice: unused)."""
    g_min: float
    """Device floor [µS]; a level L is written as g_min + L·Δg."""

    @property
    def n_slices(self) -> int:
        """Device pairs per weight (1 unless bit slicing)."""
        return int(self.g_pos.shape[0])

    @property
    def slice_gain(self) -> torch.Tensor:
        """Digit weight of each slice, base^k [S]."""
        return torch.tensor([float(self.base) ** k for k in range(self.n_slices)], dtype=self.g_pos.dtype)


def slices_needed(quant: QuantConfig, device: DeviceConfig) -> int:
    """Device pairs per weight for `quant.weight_bits` on a device with `device.states` states.

    Raises `MemgruError` when slicing is needed but the device config says `refuse`.
    """
    if quant.weight_float:
        return 1
    need = quant.levels_per_device
    if need <= device.states:
        return 1
    if device.slicing == "refuse":
        raise MemgruError(
            f"{quant.weight_bits}-bit weights need {need} conductance states per device but the device "
            f"has {device.states}; use <= {int(math.log2(device.states)) + 1} bits or slicing='bitslice'"
        )
    n, reach = 1, device.states
    while reach < need:
        n, reach = n + 1, reach * device.states
    return n


def weight_to_conductance(w: torch.Tensor, quant: QuantConfig, device: DeviceConfig) -> ConductanceMap:
    """Map a float weight matrix [out, in] to target conductances on differential pairs.

    Float weights (weight_bits 32) map continuously, |w| / max|w| of the row spanning the full window.
    """
    w = w.detach().to(torch.float64)
    window = device.g_max - device.g_min
    n_slices = slices_needed(quant, device)
    if quant.weight_float:
        amax = w.abs().amax(dim=1) if quant.per_channel else w.abs().amax().expand(w.shape[0])
        scale = torch.where(amax > 0, amax, torch.ones_like(amax))
        levels = w / scale[:, None]
        step, base = window, 2
    else:
        levels, scale = quantize_weight(w, quant.weight_bits, quant.per_channel)
        if n_slices == 1:
            step, base = window / quant.weight_levels, 2
        else:
            step, base = window / (device.states - 1), device.states
    magnitude = levels.abs()
    digits = []
    for _ in range(n_slices):
        if n_slices == 1:
            digits.append(magnitude)
        else:
            digits.append(torch.remainder(magnitude, base))
            magnitude = torch.div(magnitude, base, rounding_mode="floor")
    digit = torch.stack(digits)
    positive = (levels > 0).unsqueeze(0)
    g_on = device.g_min + digit * step
    g_pos = torch.where(positive, g_on, torch.full_like(g_on, device.g_min))
    g_neg = torch.where(positive, torch.full_like(g_on, device.g_min), g_on)
    return ConductanceMap(g_pos=g_pos, g_neg=g_neg, scale=scale, step=step, base=base, g_min=device.g_min)


def level_matrix(g_pos: torch.Tensor, g_neg: torch.Tensor, cmap: ConductanceMap) -> torch.Tensor:
    """Level-domain value of each slice, (G+ − G−) / Δg [S, out, rows]."""
    return (g_pos - g_neg) / cmap.step


def conductance_to_weight(
    cmap: ConductanceMap, g_pos: torch.Tensor | None = None, g_neg: torch.Tensor | None = None
) -> torch.Tensor:
    """Read weights [out, in] back from conductances (the targets of `cmap` unless others are given)."""
    g_pos = cmap.g_pos if g_pos is None else g_pos
    g_neg = cmap.g_neg if g_neg is None else g_neg
    levels = (level_matrix(g_pos, g_neg, cmap) * cmap.slice_gain.to(g_pos.dtype)[:, None, None]).sum(0)
    return levels * cmap.scale[:, None]


@dataclass
class Nonideal:
    """Conductances as programmed on the chip, and the stuck-device masks."""

    g_pos: torch.Tensor
    """Actual G+ [S, out, rows] in µS."""
    g_neg: torch.Tensor
    """Actual G− [S, out, rows] in µS."""
    stuck_pos: torch.Tensor
    """int8 mask of G+ devices: 0 fine, 1 stuck at HRS (g_min), 2 stuck at LRS (g_max)."""
    stuck_neg: torch.Tensor
    """Same for G−."""
    drift_gain: float
    """Global drift compensation factor applied to the array outputs (1.0 when off or no drift)."""


def _program_device(g: torch.Tensor, device: DeviceConfig, gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """One side (G+ or G−) as written: programming variation and stuck-at faults; returns (G, stuck mask)."""
    window = device.g_max - device.g_min
    out = g
    if device.prog_sigma > 0:
        noise = torch.randn(g.shape, generator=gen, dtype=g.dtype)
        out = torch.clamp(g + noise * device.prog_sigma * window, device.g_min, device.g_max)
    stuck = torch.zeros(g.shape, dtype=torch.int8)
    if device.stuck_hrs > 0 or device.stuck_lrs > 0:
        u = torch.rand(g.shape, generator=gen, dtype=g.dtype)
        hrs = u < device.stuck_hrs
        lrs = (u >= device.stuck_hrs) & (u < device.stuck_hrs + device.stuck_lrs)
        out = torch.where(hrs, torch.full_like(out, device.g_min), out)
        out = torch.where(lrs, torch.full_like(out, device.g_max), out)
        stuck[hrs] = STUCK_HRS
        stuck[lrs] = STUCK_LRS
    return out, stuck


def _drift(g: torch.Tensor, device: DeviceConfig, gen: torch.Generator) -> torch.Tensor:
    """G(t) = G0 (t / t0)^-ν with a per-device exponent ν ~ N(drift_nu, drift_nu_std) clipped at 0."""
    if device.drift_nu <= 0 or device.drift_time <= device.drift_t0:
        return g
    nu = torch.full_like(g, device.drift_nu)
    if device.drift_nu_std > 0:
        nu = torch.clamp(nu + torch.randn(g.shape, generator=gen, dtype=g.dtype) * device.drift_nu_std, min=0)
    return g * (device.drift_time / device.drift_t0) ** (-nu)


def apply_nonidealities(cmap: ConductanceMap, device: DeviceConfig, seed: int) -> Nonideal:
    """Program the target conductances once: returns new tensors, `cmap` is not modified.

    The same `seed` gives the same chip (variation, faults and drift exponents).
    """
    gen = torch.Generator().manual_seed(int(seed))
    written_pos, stuck_pos = _program_device(cmap.g_pos, device, gen)
    written_neg, stuck_neg = _program_device(cmap.g_neg, device, gen)
    g_pos, g_neg = _drift(written_pos, device, gen), _drift(written_neg, device, gen)
    gain = 1.0
    if device.drift_compensation and g_pos is not written_pos:
        # What a calibration read measures: the mean shrinkage of the programmed weights since t0.
        before = (written_pos - written_neg).abs().sum()
        after = (g_pos - g_neg).abs().sum()
        gain = float(before / after) if after > 0 else 1.0
    return Nonideal(g_pos=g_pos, g_neg=g_neg, stuck_pos=stuck_pos, stuck_neg=stuck_neg, drift_gain=gain)


@dataclass
class ProgrammedMatrix:
    """One weight matrix as it sits on the chip: tiles of conductances, ADC ranges, and its MVM.

    Built by `program`. `mvm` is the analog matrix-vector product of the whole tiled matrix:
    row tiles produce partial sums (with read noise), each goes through its ADC, slices and tiles are
    shifted and added digitally, then the per-output scale and (digital) bias are applied.
    """

    cmap: ConductanceMap
    """The targets."""
    chip: Nonideal
    """The programmed conductances."""
    device: DeviceConfig
    """The hardware description."""
    quant: QuantConfig
    """The weight precision used."""
    in_features: int
    """Logical inputs (without the bias row)."""
    bias: torch.Tensor | None
    """Digital bias [out] added after the ADC (None when absent or programmed as a row)."""
    seed: int
    """Seed of this programming (read noise draws from a generator seeded from it)."""
    adc_range: torch.Tensor | None = None
    """ADC full scale per (slice, row tile, output) [S*R, 1, out] in levels; None until calibrated."""
    observing: bool = False
    """While True, `mvm` records partial-sum ranges instead of quantizing (ADC calibration)."""
    _observed: torch.Tensor | None = field(default=None, repr=False)
    _noise: torch.Tensor | None = field(default=None, repr=False)
    _noise_next: int = field(default=0, repr=False)
    _w_lsb: torch.Tensor | None = field(default=None, repr=False)
    _code_value: torch.Tensor | None = field(default=None, repr=False)
    _read_gen: torch.Generator = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._read_gen = torch.Generator().manual_seed(int(self.seed) + 7919)
        levels = level_matrix(self.chip.g_pos, self.chip.g_neg, self.cmap) * self.chip.drift_gain
        self.rows_total = int(levels.shape[2])
        self.n_row_tiles = max(1, math.ceil(self.rows_total / self.device.rows))
        pad = self.n_row_tiles * self.device.rows - self.rows_total
        gain = self.cmap.slice_gain.to(levels.dtype)
        scale = self.cmap.scale.to(levels.dtype)
        # Fast path (no ADC): one matrix in weight units, slices and scale folded in.
        self.w_flat = ((levels * gain[:, None, None]).sum(0) * scale[:, None]).t().float().contiguous()
        # Tiled path: [S, R, rows, out] in levels.
        padded = torch.nn.functional.pad(levels, (0, pad))
        s, out = padded.shape[0], padded.shape[1]
        self.w_tiles = padded.view(s, out, self.n_row_tiles, self.device.rows).permute(0, 2, 3, 1).float().contiguous()
        self.gain = gain.float().view(-1, 1, 1, 1)
        self.scale_out = scale.float()
        window = self.device.g_max - self.device.g_min
        # Read noise of one device pair in levels (two devices: sqrt 2), times the slice gains.
        self.read_std = math.sqrt(2.0) * self.device.read_sigma * window / self.cmap.step * self.chip.drift_gain
        self.read_std_flat = self.read_std * float(torch.sqrt((gain**2).sum()))

    @property
    def out_features(self) -> int:
        """Outputs of the matrix."""
        return int(self.cmap.g_pos.shape[1])

    @property
    def adc_ideal(self) -> bool:
        """True when the ADC does not quantize (adc_bits 32)."""
        return self.device.adc_bits >= FLOAT_BITS

    def effective_weight(self) -> torch.Tensor:
        """The weights the chip actually applies, [out, rows] incl. a bias row if programmed (float32)."""
        return self.w_flat.t()

    def _with_bias_row(self, x: torch.Tensor) -> torch.Tensor:
        if self.rows_total == self.in_features:
            return x
        return torch.cat([x, torch.ones(*x.shape[:-1], 1, dtype=x.dtype)], dim=-1)

    def mvm(self, x: torch.Tensor) -> torch.Tensor:
        """y = W x on the chip for a batch x [B, in] (already DAC-quantized); returns [B, out].

        Read noise is drawn once per output and MVM with the variance of all devices on that output's
        column pairs (exact for the analog sum); it is added after the ADC, an approximation of under
        one ADC step that saves drawing a sample per tile.
        """
        x = self._with_bias_row(x)
        y = x @ self.w_flat if self.adc_ideal else self._tiled_mvm(x)
        if self.read_std > 0:
            std = x.norm(dim=-1, keepdim=True) * (self.scale_out * self.read_std_flat)
            y.addcmul_(self._standard_normal(y.shape), std)
        return y if self.bias is None else y + self.bias

    def _standard_normal(self, shape: torch.Size) -> torch.Tensor:
        """Fresh i.i.d. N(0, 1) samples of `shape`, drawn from the read-noise stream in blocks of about
        `NOISE_BLOCK_SAMPLES` (one large draw is cheaper than many small ones; no sample is reused)."""
        if self._noise is None or self._noise.shape[1:] != shape or self._noise_next >= len(self._noise):
            block = max(1, NOISE_BLOCK_SAMPLES // max(1, math.prod(shape)))
            self._noise = torch.randn((block, *shape), generator=self._read_gen)
            self._noise_next = 0
        self._noise_next += 1
        return self._noise[self._noise_next - 1]

    def _tiled_mvm(self, x: torch.Tensor) -> torch.Tensor:
        """Row tiles -> partial sums -> per-tile ADC -> shift-and-add over slices and tiles -> scale."""
        rows, tiles, n_slices = self.device.rows, self.n_row_tiles, self.cmap.n_slices
        pad = tiles * rows - x.shape[-1]
        xt = (torch.nn.functional.pad(x, (0, pad)) if pad else x).view(x.shape[0], tiles, rows).transpose(0, 1)
        if n_slices > 1:
            xt = xt.repeat(n_slices, 1, 1)
        if self.observing or self.adc_range is None:
            partial = torch.bmm(xt, self.w_tiles.view(-1, rows, self.out_features))  # [S*R, B, out] levels
            peak = partial.detach().abs().amax(dim=1, keepdim=True)
            self._observed = peak if self._observed is None else torch.maximum(self._observed, peak)
            if self.observing:
                return (partial.view(n_slices, tiles, -1, self.out_features) * self.gain).sum((0, 1)) * self.scale_out
            self._freeze_adc(self._observed)
        m = 2 ** (self.device.adc_bits - 1) - 1
        codes = torch.bmm(xt, self._w_lsb).round_().clamp_(-m, m)  # ADC output codes [S*R, B, out]
        y = codes[0].mul_(self._code_value[0])
        for k in range(1, codes.shape[0]):
            y.addcmul_(codes[k], self._code_value[k])
        return y

    def _freeze_adc(self, peak: torch.Tensor) -> None:
        """Fix the ADC full scale per (slice, row tile, output) and fold the LSB into the tile weights."""
        self.adc_range = peak
        m = 2 ** (self.device.adc_bits - 1) - 1
        lsb = torch.where(peak > 0, peak / m, torch.ones_like(peak))  # [S*R, 1, out] levels per code
        self._w_lsb = (self.w_tiles.view(-1, self.device.rows, self.out_features) / lsb).contiguous()
        gain = self.gain.view(-1, 1).repeat_interleave(self.n_row_tiles, dim=0).view(-1, 1, 1)
        self._code_value = (lsb * gain * self.scale_out).contiguous()

    def start_calibration(self) -> None:
        """Begin recording ADC ranges (forget earlier ones)."""
        self.observing, self._observed, self.adc_range = True, None, None

    def finish_calibration(self) -> None:
        """Freeze the recorded ADC ranges."""
        self.observing = False
        if self._observed is not None:
            self._freeze_adc(self._observed)

    def cost(self) -> dict[str, int]:
        """Hardware cost of this matrix: arrays, devices, conductance states, ADC conversions per MVM."""
        cols_tiles = math.ceil(self.out_features / self.device.outputs_per_array)
        return {
            "slices": self.cmap.n_slices,
            "row_tiles": self.n_row_tiles,
            "col_tiles": cols_tiles,
            "arrays": self.cmap.n_slices * self.n_row_tiles * cols_tiles,
            "devices": 2 * self.cmap.n_slices * self.out_features * self.rows_total,
            "adc_conversions_per_mvm": self.cmap.n_slices * self.n_row_tiles * self.out_features,
        }

    def summary(self) -> dict[str, float | int]:
        """Numbers a designer wants about this matrix (JSON-able)."""
        target_w = conductance_to_weight(self.cmap)
        actual = self.effective_weight().double()
        err = actual - target_w
        stuck = torch.stack([self.chip.stuck_pos, self.chip.stuck_neg])
        return {
            "out_features": self.out_features,
            "rows": self.rows_total,
            **self.cost(),
            "g_min_uS": float(torch.minimum(self.chip.g_pos.min(), self.chip.g_neg.min())),
            "g_max_uS": float(torch.maximum(self.chip.g_pos.max(), self.chip.g_neg.max())),
            "distinct_target_levels": int(torch.unique(torch.cat([self.cmap.g_pos, self.cmap.g_neg])).numel()),
            "stuck_hrs": int((stuck == STUCK_HRS).sum()),
            "stuck_lrs": int((stuck == STUCK_LRS).sum()),
            "drift_gain": self.chip.drift_gain,
            "weight_rms": float(target_w.pow(2).mean().sqrt()),
            "weight_error_rms": float(err.pow(2).mean().sqrt()),
        }

    def tiles(self) -> list[dict[str, object]]:
        """Each physical array: its slice, row/col tile index, and G+ / G− blocks (numpy, µS) with stuck masks."""
        result = []
        rows, outs = self.device.rows, self.device.outputs_per_array
        for s in range(self.cmap.n_slices):
            for r in range(self.n_row_tiles):
                for c in range(math.ceil(self.out_features / outs)):
                    block = (s, slice(c * outs, (c + 1) * outs), slice(r * rows, (r + 1) * rows))
                    result.append({
                        "slice": s, "row_tile": r, "col_tile": c,
                        "g_pos": self.chip.g_pos[block].numpy(), "g_neg": self.chip.g_neg[block].numpy(),
                        "stuck_pos": self.chip.stuck_pos[block].numpy(),
                        "stuck_neg": self.chip.stuck_neg[block].numpy(),
                    })
        return result

    def export_arrays(self) -> dict[str, np.ndarray]:
        """Arrays to save (NPZ): target and actual G± [S, out, rows] in µS, stuck masks, scale, effective W."""
        return {
            "target_g_pos_uS": self.cmap.g_pos.numpy(), "target_g_neg_uS": self.cmap.g_neg.numpy(),
            "g_pos_uS": self.chip.g_pos.numpy(), "g_neg_uS": self.chip.g_neg.numpy(),
            "stuck_pos": self.chip.stuck_pos.numpy(), "stuck_neg": self.chip.stuck_neg.numpy(),
            "scale": self.cmap.scale.numpy(), "effective_weight": self.effective_weight().numpy(),
        }


def program(
    weight: torch.Tensor,
    bias: torch.Tensor | None,
    quant: QuantConfig,
    device: DeviceConfig,
    seed: int,
) -> ProgrammedMatrix:
    """Program a float [out, in] matrix (and bias [out]) onto tiled crossbars with the device's
    non-idealities; `bias` goes on an extra row when `device.bias == 'row'`, else stays digital."""
    w = weight.detach().to(torch.float64)
    digital_bias = None
    if bias is not None:
        if device.bias == "row":
            w = torch.cat([w, bias.detach().to(torch.float64)[:, None]], dim=1)
        else:
            digital_bias = bias.detach().float().clone()
    cmap = weight_to_conductance(w, quant, device)
    chip = apply_nonidealities(cmap, device, seed)
    return ProgrammedMatrix(
        cmap=cmap, chip=chip, device=device, quant=quant, in_features=int(weight.shape[1]),
        bias=digital_bias, seed=seed,
    )
