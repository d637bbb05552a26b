"""Crossbar layers: `CrossbarLinear`, `CrossbarGRU` (drop-in for `torch.nn.GRU`) and `convert`.

Two forward paths share one set of float "master" parameters:
- training mode: quantization-aware training (fake-quantized weights and activations, STE) plus
  weight-noise injection, in float arithmetic, so gradients flow;
- eval mode: the programmed chip — the weights are mapped to conductances once per programming
  (variation, stuck devices, drift), then every MVM runs tiled with read noise and per-tile ADC.

Example:
    >>> import torch
    >>> from memgru import QuantConfig, DeviceConfig, convert
    >>> gru = torch.nn.GRU(8, 16, num_layers=2, batch_first=True)
    >>> mem = convert(gru, quant=QuantConfig(weight_bits=6, act_bits=8), device=DeviceConfig.rram_1t1r(), seed=0)
    >>> out, h = mem.eval()(torch.randn(4, 10, 8))
    >>> tuple(out.shape), tuple(h.shape)
    ((4, 10, 16), (2, 4, 16))
"""

from __future__ import annotations

import copy
import dataclasses
import math
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager

import torch
import torch.nn.functional as F
from torch import nn

from memgru.config import FLOAT_BITS, NOISE_SCALES, DeviceConfig, QuantConfig
from memgru.crossbar import ProgrammedMatrix, program
from memgru.errors import MemgruError
from memgru.quant import ActivationQuantizer, fake_quant_weight, inject_weight_noise

GATES = ("r", "z", "n")
"""PyTorch's gate order inside weight_ih / weight_hh: reset, update, new."""


def _input_bits(quant: QuantConfig, device: DeviceConfig) -> int:
    """Bits of the values driven onto crossbar rows: the DAC caps the activation precision."""
    return min(quant.act_bits_at("input"), device.dac_bits)


class _CrossbarBase(nn.Module):
    """Shared machinery: hardware description, seed, weight-noise η, and the per-programming cache."""

    def __init__(self, quant: QuantConfig, device: DeviceConfig, seed: int) -> None:
        super().__init__()
        self.quant = quant
        self.device = device
        self.seed = int(seed)
        self.base_seed = int(seed)
        self.weight_noise = 0.0
        self.noise_scale = "matrix"
        self.matrix_bits: dict[str, int] = {}
        self._calibrating = False
        self._chip: dict[str, ProgrammedMatrix] = {}
        self._chip_key: tuple | None = None
        self._noise_gen = torch.Generator().manual_seed(self.seed + 104729)
        self._noisy_eval: dict[str, torch.Tensor] | None = None

    def _matrices(self) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
        """Name -> (weight [out, in], bias or None) of every matrix this layer programs."""
        raise NotImplementedError

    def programmed(self) -> dict[str, ProgrammedMatrix]:
        """The layer's matrices as programmed on the chip (programmed once, again when weights change)."""
        mats = self._matrices()
        versions = tuple((t._version, t.data_ptr()) for w, b in mats.values() for t in (w, b) if t is not None)
        key = (self.seed, self.quant, self.device, tuple(sorted(self.matrix_bits.items())), *versions)
        if key != self._chip_key:
            self._chip = {
                name: program(w, b, self.matrix_quant(name), self.device, seed=self.seed + 1009 * i)
                for i, (name, (w, b)) in enumerate(mats.items())
            }
            self._chip_key = key
        return self._chip

    def reprogram(self, seed: int) -> None:
        """Program a fresh chip with another device seed (new variation, faults, drift, read noise)."""
        self.seed = int(seed)
        self._chip_key = None
        self._noise_gen = torch.Generator().manual_seed(self.seed + 104729)

    def matrix_quant(self, name: str) -> QuantConfig:
        """The precision matrix `name` is programmed at: the layer's `quant`, with the weight bits of
        `matrix_bits[name]` when a mixed-precision plan set them (see `memgru.fusion`)."""
        bits = self.matrix_bits.get(name)
        return self.quant if bits is None else dataclasses.replace(self.quant, weight_bits=int(bits))

    def set_matrix_bits(self, bits: dict[str, int]) -> None:
        """Per-matrix weight bits (name -> 2..16 or 32), overriding `quant.weight_bits`; {} clears."""
        unknown = sorted(set(bits) - set(self._matrices()))
        if unknown:
            raise MemgruError(f"no matrix {unknown} in this layer; it has {sorted(self._matrices())}")
        checked = {name: QuantConfig(weight_bits=int(b)).weight_bits for name, b in bits.items()}
        self.matrix_bits = checked
        self._chip_key = None

    def _train_weight(self, w: torch.Tensor, name: str) -> torch.Tensor:
        """QAT + weight-noise view of matrix `name`'s weight for the training forward (gradients reach `w`)."""
        if self._noisy_eval is not None and name in self._noisy_eval:
            return self._noisy_eval[name]
        wq = fake_quant_weight(w, self.matrix_quant(name).weight_bits, self.quant.per_channel)
        noisy = inject_weight_noise(wq, self.weight_noise, self._noise_gen, self.noise_scale)
        if self._noisy_eval is not None:
            self._noisy_eval[name] = noisy
        return noisy

    @property
    def _train_forward(self) -> bool:
        """True when forward uses the training view of the weights (training mode, or inside `noisy_weights`)."""
        return self.training or self._noisy_eval is not None

    def _quantizers(self) -> Iterator[ActivationQuantizer]:
        return (m for m in self.modules() if isinstance(m, ActivationQuantizer))

    def needs_calibration(self) -> bool:
        """True when an activation range or an ADC range is still unknown (False while calibrating)."""
        if self._calibrating:
            return False
        if any(q.enabled and not q.calibrated for q in self._quantizers()):
            return True
        return any(not pm.adc_ideal and pm.adc_range is None for pm in self.programmed().values())

    @contextmanager
    def observing(self) -> Iterator[None]:
        """Calibration: inside, activation quantizers and ADCs record ranges and pass values through."""
        quantizers = [q for q in self._quantizers() if q.enabled and not q.fixed]
        chip = self.programmed().values()
        for q in quantizers:
            q.set_range(float("inf"), float("-inf"))
            q.observing = True
        for pm in chip:
            pm.start_calibration()
        self._calibrating = True
        try:
            yield
        finally:
            self._calibrating = False
            for q in quantizers:
                q.observing = False
            for pm in chip:
                pm.finish_calibration()

    def extra_repr(self) -> str:
        return f"weight_bits={self.quant.weight_bits}, act_bits={self.quant.act_bits}, seed={self.seed}"


class CrossbarLinear(_CrossbarBase):
    """`torch.nn.Linear` on a crossbar: y = x Wᵀ + b with W programmed as conductances.

    Example:
        >>> lin = CrossbarLinear(4, 3, quant=QuantConfig(weight_bits=8), device=DeviceConfig.ideal(), seed=0)
        >>> lin.eval()(torch.ones(2, 4)).shape
        torch.Size([2, 3])
    """

    def __init__(
        self, in_features: int, out_features: int, bias: bool = True, *,
        quant: QuantConfig, device: DeviceConfig, seed: int = 0,
    ) -> None:
        super().__init__(quant, device, seed)
        self.in_features, self.out_features = in_features, out_features
        self.weight = nn.Parameter(torch.empty(out_features, in_features))
        self.bias = nn.Parameter(torch.empty(out_features)) if bias else None
        self.input_quant = ActivationQuantizer(_input_bits(quant, device), percentile=quant.act_percentile)
        ref = nn.Linear(in_features, out_features, bias)
        with torch.no_grad():
            self.weight.copy_(ref.weight)
            if self.bias is not None:
                self.bias.copy_(ref.bias)

    def _matrices(self) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
        return {"weight": (self.weight, self.bias)}

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """y [..., out] from x [..., in]."""
        if x.shape[-1] != self.in_features:
            raise MemgruError(f"CrossbarLinear expects {self.in_features} input features, got {x.shape[-1]}")
        if self._train_forward:
            return F.linear(self.input_quant(x), self._train_weight(self.weight, "weight"), self.bias)
        if self.needs_calibration():
            with self.observing():
                self._chip_forward(x)
        return self._chip_forward(x)

    def _chip_forward(self, x: torch.Tensor) -> torch.Tensor:
        pm = self.programmed()["weight"]
        flat = self.input_quant(x).reshape(-1, self.in_features)
        return pm.mvm(flat).reshape(*x.shape[:-1], self.out_features)


class _GateQuantizers(nn.Module):
    """The activation quantizers of one GRU layer (DAC inputs, gate pre-activations, gate outputs)."""

    def __init__(self, quant: QuantConfig, device: DeviceConfig, hidden: int) -> None:
        super().__init__()
        self.hidden = hidden
        in_bits = _input_bits(quant, device)
        pre_bits, gate_bits = quant.act_bits_at("preact"), quant.act_bits_at("gate")
        p = quant.act_percentile
        self.x = ActivationQuantizer(in_bits, percentile=p)
        self.h = ActivationQuantizer(in_bits, percentile=p)
        self.pre = nn.ModuleDict({g: ActivationQuantizer(pre_bits, percentile=p) for g in GATES})
        self.gate = nn.ModuleDict({
            "r": ActivationQuantizer(gate_bits, fixed_range=(0.0, 1.0)),
            "z": ActivationQuantizer(gate_bits, fixed_range=(0.0, 1.0)),
            "n": ActivationQuantizer(gate_bits, fixed_range=(-1.0, 1.0)),
        })

    @property
    def any_enabled(self) -> bool:
        return any(q.enabled for q in self.modules() if isinstance(q, ActivationQuantizer))

    def lookup_tables(self, circuit: str) -> _GateTables | None:
        """The gate periphery as tables (cached per calibration), or None when the pre-activations
        are not all quantized and calibrated."""
        pre = [self.pre[g] for g in GATES]
        if not all(p.enabled and p.calibrated and not p.observing for p in pre):
            return None
        key = (circuit, *(p.qparams() for p in pre), *(self.gate[g].qparams() for g in GATES))
        if getattr(self, "_lut_key", None) != key:
            self._lut = _GateTables(self, circuit, self.hidden)
            self._lut_key = key
        return self._lut


def _hard_sigmoid(x: torch.Tensor) -> torch.Tensor:
    """Piecewise-linear sigmoid of an analog periphery: clamp(x/4 + 1/2, 0, 1) (slope matches at 0)."""
    return torch.clamp(x * 0.25 + 0.5, 0.0, 1.0)


class CrossbarGRU(_CrossbarBase):
    """`torch.nn.GRU` on crossbars: same constructor, parameter names, call signature and outputs.

    `forward(input, h0=None) -> (output, h_n)` with `batch_first`, `num_layers`, unbatched input and
    inter-layer dropout as in PyTorch. Bidirectional GRUs and PackedSequence inputs are not supported.
    """

    def __init__(
        self, input_size: int, hidden_size: int, num_layers: int = 1, bias: bool = True,
        batch_first: bool = False, dropout: float = 0.0, bidirectional: bool = False, *,
        quant: QuantConfig, device: DeviceConfig, seed: int = 0,
    ) -> None:
        super().__init__(quant, device, seed)
        if bidirectional:
            raise MemgruError("bidirectional GRUs are not supported on the crossbar yet")
        self.input_size, self.hidden_size, self.num_layers = input_size, hidden_size, num_layers
        self.use_bias, self.batch_first, self.dropout = bias, batch_first, float(dropout)
        ref = nn.GRU(input_size, hidden_size, num_layers, bias=bias)
        for name, param in ref.named_parameters():
            self.register_parameter(name, nn.Parameter(param.detach().clone()))
        self.act = nn.ModuleList(_GateQuantizers(quant, device, hidden_size) for _ in range(num_layers))

    def _weights(self, layer: int) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None, torch.Tensor | None]:
        get = lambda n: getattr(self, f"{n}_l{layer}", None)  # noqa: E731
        return get("weight_ih"), get("weight_hh"), get("bias_ih"), get("bias_hh")

    def _matrices(self) -> dict[str, tuple[torch.Tensor, torch.Tensor | None]]:
        mats = {}
        for k in range(self.num_layers):
            w_ih, w_hh, b_ih, b_hh = self._weights(k)
            mats[f"ih_l{k}"] = (w_ih, b_ih)
            mats[f"hh_l{k}"] = (w_hh, b_hh)
        return mats

    def _check_input(self, x: torch.Tensor, h0: torch.Tensor | None) -> tuple[torch.Tensor, torch.Tensor | None, bool]:
        if isinstance(x, nn.utils.rnn.PackedSequence):
            raise MemgruError("PackedSequence input is not supported by CrossbarGRU; pad the batch instead")
        if x.dim() not in (2, 3) or x.shape[-1] != self.input_size:
            raise MemgruError(
                f"CrossbarGRU expects input of shape (L, N, {self.input_size}), (N, L, {self.input_size}) "
                f"with batch_first, or (L, {self.input_size}); got {tuple(x.shape)}"
            )
        unbatched = x.dim() == 2
        x = x.unsqueeze(0) if unbatched else (x if self.batch_first else x.transpose(0, 1))
        if h0 is not None:
            h0 = h0.unsqueeze(1) if unbatched and h0.dim() == 2 else h0
            want = (self.num_layers, x.shape[0], self.hidden_size)
            if tuple(h0.shape) != want:
                raise MemgruError(f"h0 must have shape {want}, got {tuple(h0.shape)}")
        return x, h0, unbatched

    def forward(self, input: torch.Tensor, hx: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        """Run the GRU: returns (output, h_n) shaped exactly like `torch.nn.GRU`'s."""
        x, h0, unbatched = self._check_input(input, hx)
        if h0 is None:
            h0 = torch.zeros(self.num_layers, x.shape[0], self.hidden_size, dtype=x.dtype)
        if self._train_forward:
            out, h_n = self._run(x, h0, self._train_projections())
        else:
            if self.needs_calibration():
                with self.observing(), torch.no_grad():
                    self._run(x, h0, self._chip_projections())
            out, h_n = self._run(x, h0, self._chip_projections())
        if unbatched:
            return out.squeeze(0), h_n.squeeze(1)
        return (out if self.batch_first else out.transpose(0, 1)), h_n

    def _train_projections(self) -> list[tuple[Callable, Callable, list[torch.Tensor]]]:
        proj = []
        for k in range(self.num_layers):
            w_ih, w_hh, b_ih, b_hh = self._weights(k)
            wi, wh = self._train_weight(w_ih, f"ih_l{k}"), self._train_weight(w_hh, f"hh_l{k}")
            proj.append((
                lambda v, w=wi, b=b_ih: F.linear(v, w, b),
                lambda v, w=wh, b=b_hh: F.linear(v, w, b),
                [t for t in (wi, wh, b_ih, b_hh) if t is not None],
            ))
        return proj

    def _chip_projections(self) -> list[tuple[Callable, Callable, list[torch.Tensor]]]:
        chip = self.programmed()
        proj = []
        for k in range(self.num_layers):
            ih, hh = chip[f"ih_l{k}"], chip[f"hh_l{k}"]
            flat = []
            if ih.adc_ideal and hh.adc_ideal and ih.read_std == 0 and hh.read_std == 0:
                (w_ih, *b_ih), (w_hh, *b_hh) = _split_bias(ih), _split_bias(hh)
                flat = [w_ih, w_hh, *b_ih, *b_hh]
            proj.append((ih.mvm, hh.mvm, flat))
        return proj

    def _fused_ok(self, proj: list[tuple[Callable, Callable, list[torch.Tensor]]]) -> bool:
        """PyTorch's fused GRU kernel is exact here: no activation quantization, no ADC, no read noise,
        exact sigmoid/tanh."""
        return (
            all(len(p[2]) == 4 or (len(p[2]) == 2 and not self.use_bias) for p in proj)
            and not any(a.any_enabled for a in self.act)
            and self.device.activation_circuit == "lut"
        )

    def _run(self, x: torch.Tensor, h0: torch.Tensor, proj: list) -> tuple[torch.Tensor, torch.Tensor]:
        if self._fused_ok(proj):
            flat = [t for p in proj for t in p[2]]
            out, h_n = torch._VF.gru(
                x, h0, flat, self.use_bias, self.num_layers, self.dropout, self.training, False, True
            )
            return out, h_n
        h_last = []
        for k, (p_in, p_h, _) in enumerate(proj):
            x, h = self._layer(k, x, h0[k], p_in, p_h)
            h_last.append(h)
            if self.training and self.dropout > 0 and k < self.num_layers - 1:
                x = F.dropout(x, self.dropout, training=True)
        return x, torch.stack(h_last)

    def _layer(
        self, k: int, x: torch.Tensor, h: torch.Tensor, p_in: Callable, p_h: Callable
    ) -> tuple[torch.Tensor, torch.Tensor]:
        q = self.act[k]
        batch, steps, _ = x.shape
        H = self.hidden_size
        gi = p_in(q.x(x).reshape(batch * steps, -1)).view(batch, steps, 3 * H)
        lut = None if torch.is_grad_enabled() or self.training else q.lookup_tables(self.device.activation_circuit)
        sigmoid, tanh = _activations(self.device.activation_circuit)
        outputs = []
        for t in range(steps):
            gh = p_h(q.h(h))
            if lut is not None:
                h = lut.step(gi[:, t], gh, h)
            else:
                i_r, i_z, i_n = gi[:, t].split(H, dim=1)
                h_r, h_z, h_n = gh.split(H, dim=1)
                r = q.gate["r"](sigmoid(q.pre["r"](i_r + h_r)))
                z = q.gate["z"](sigmoid(q.pre["z"](i_z + h_z)))
                n = q.gate["n"](tanh(q.pre["n"](torch.addcmul(i_n, r, h_n))))
                h = torch.lerp(n, h, z)
            outputs.append(h)
        return torch.stack(outputs, dim=1), h


def _activations(circuit: str) -> tuple[Callable, Callable]:
    """(sigmoid, tanh) of the periphery: exact functions (`lut`) or piecewise-linear (`pwl`)."""
    return (_hard_sigmoid, F.hardtanh) if circuit == "pwl" else (torch.sigmoid, torch.tanh)


class _GateTables:
    """The gate periphery as look-up tables, for the eval forward when the pre-activations are quantized.

    A quantized pre-activation is an integer code; sigmoid/tanh followed by the gate-output quantizer
    is then a table indexed by that code (what a digital LUT periphery does). Same numbers as applying
    the quantizers and functions in turn, in fewer kernels: r and z share one table and one index pass.
    """

    def __init__(self, q: _GateQuantizers, circuit: str, hidden: int) -> None:
        sigmoid, tanh = _activations(circuit)
        H = hidden
        inv, offset, low, high, tables = [], [], [], [], []
        start = 0
        for gate, fn in (("r", sigmoid), ("z", sigmoid), ("n", tanh)):
            scale, zero_point = q.pre[gate].qparams()
            levels = 2 ** q.pre[gate].bits
            codes = torch.arange(levels, dtype=torch.float32)
            tables.append(q.gate[gate](fn((codes - zero_point) * scale)))
            inv.append(1.0 / scale)
            offset.append(zero_point + start)
            low.append(start)
            high.append(start + levels - 1)
            start += levels
        per_channel = lambda v: torch.tensor(v[:2], dtype=torch.float32).repeat_interleave(H)  # noqa: E731
        self.rz_inv, self.rz_offset = per_channel(inv), per_channel(offset)
        self.rz_low, self.rz_high = per_channel(low), per_channel(high)
        self.n_inv, self.n_offset, self.n_low, self.n_high = inv[2], offset[2], low[2], high[2]
        self.table = torch.cat(tables).contiguous()
        self.hidden = H

    def step(self, gi: torch.Tensor, gh: torch.Tensor, h: torch.Tensor) -> torch.Tensor:
        """One GRU step from input/recurrent pre-activations gi, gh [B, 3H] and state h [B, H]."""
        H = self.hidden
        pre = gi[:, : 2 * H] + gh[:, : 2 * H]
        index = pre.mul_(self.rz_inv).round_().add_(self.rz_offset).clamp_(self.rz_low, self.rz_high)
        rz = self.table.take(index.long())
        r, z = rz[:, :H], rz[:, H:]
        pre_n = torch.addcmul(gi[:, 2 * H :], r, gh[:, 2 * H :])
        index = pre_n.mul_(self.n_inv).round_().add_(self.n_offset).clamp_(self.n_low, self.n_high)
        n = self.table.take(index.long())
        return torch.lerp(n, h, z)


def _split_bias(pm: ProgrammedMatrix) -> list[torch.Tensor]:
    """Effective weight [out, in] and bias [out] of a programmed matrix, for the fused kernel."""
    w = pm.effective_weight()
    if pm.rows_total > pm.in_features:
        return [w[:, : pm.in_features].contiguous(), w[:, pm.in_features].contiguous()]
    bias = [pm.bias] if pm.bias is not None else []
    return [w.contiguous(), *bias]


CROSSBAR_TYPES = (CrossbarLinear, CrossbarGRU)


def _activation_ranges(module: nn.Module) -> list[tuple[float, float]]:
    return [(float(q.lo), float(q.hi)) for q in module.modules() if isinstance(q, ActivationQuantizer)]


def _replacement(module: nn.Module, quant: QuantConfig, device: DeviceConfig, seed: int) -> nn.Module | None:
    """The crossbar counterpart of `module` (same parameters), or None if it is not mapped."""
    if isinstance(module, nn.GRU | CrossbarGRU):
        if getattr(module, "bidirectional", False):
            raise MemgruError("convert: bidirectional nn.GRU is not supported on the crossbar yet")
        bias = module.bias if isinstance(module, nn.GRU) else module.use_bias
        new = CrossbarGRU(
            module.input_size, module.hidden_size, module.num_layers, bias=bool(bias),
            batch_first=module.batch_first, dropout=module.dropout, quant=quant, device=device, seed=seed,
        )
    elif isinstance(module, nn.Linear | CrossbarLinear):
        new = CrossbarLinear(
            module.in_features, module.out_features, module.bias is not None, quant=quant, device=device, seed=seed,
        )
    else:
        return None
    params = dict(module.named_parameters(recurse=False))
    with torch.no_grad():
        for name, param in new.named_parameters(recurse=False):
            param.copy_(params[name])
    if isinstance(module, CROSSBAR_TYPES):
        # Ranges learned in QAT or calibration stay valid at another precision.
        for q, (lo, hi) in zip(
            (q for q in new.modules() if isinstance(q, ActivationQuantizer)), _activation_ranges(module), strict=True
        ):
            if not q.fixed:
                q.set_range(lo, hi)
        new.weight_noise, new.noise_scale = module.weight_noise, module.noise_scale
    new.train(module.training)
    return new


def convert(model: nn.Module, quant: QuantConfig, device: DeviceConfig, seed: int = 0) -> nn.Module:
    """A copy of `model` with every `nn.GRU` / `nn.Linear` (or crossbar layer) mapped onto crossbars.

    The original is untouched. Each mapped layer gets its own device seed derived from `seed`, in
    module order (see `reprogram`), so the same seed always programs the same chip. The copy keeps
    the original's train/eval mode: call `.eval()` to simulate the chip (training mode runs the QAT /
    weight-noise forward instead). Converting an already converted
    model re-maps it with the new precision/device, keeping learned activation ranges.
    """
    if not isinstance(quant, QuantConfig) or not isinstance(device, DeviceConfig):
        raise MemgruError("convert needs a QuantConfig and a DeviceConfig")
    if (new := _replacement(model, quant, device, seed)) is not None:
        return reprogram(new, seed)
    model = copy.deepcopy(model)

    def swap(parent: nn.Module) -> None:
        for name, child in parent.named_children():
            new = _replacement(child, quant, device, seed)
            if new is None:
                swap(child)
            else:
                setattr(parent, name, new)

    swap(model)
    return reprogram(model, seed)


def crossbar_layers(model: nn.Module) -> dict[str, _CrossbarBase]:
    """Name -> crossbar layer, for every crossbar layer in `model`."""
    return {name: m for name, m in model.named_modules() if isinstance(m, CROSSBAR_TYPES)}


def reprogram(model: nn.Module, seed: int) -> nn.Module:
    """Program every crossbar layer of `model` afresh from device seed `seed` (in place; returns model).

    Layer i (in module order) gets device seed `seed + 7919 * i`; `base_seed` records `seed`.
    """
    for i, layer in enumerate(crossbar_layers(model).values()):
        layer.reprogram(seed + 7919 * i)
        layer.base_seed = int(seed)
    return model


def set_weight_noise(model: nn.Module, eta: float, scale: str = "matrix") -> nn.Module:
    """Set the weight-noise injection η of every crossbar layer (applies in training mode only), relative to
    each matrix's max|W| (`scale` "matrix") or each output row's (`scale` "row", see `inject_weight_noise`)."""
    if not 0.0 <= eta <= 1.0 or math.isnan(eta):
        raise MemgruError(f"weight noise η must be in [0, 1], got {eta}")
    if scale not in NOISE_SCALES:
        raise MemgruError(f"weight-noise scale must be one of {', '.join(NOISE_SCALES)}, got {scale!r}")
    for layer in crossbar_layers(model).values():
        layer.weight_noise, layer.noise_scale = float(eta), scale
    return model


@contextmanager
def noisy_weights(model: nn.Module, seed: int) -> Iterator[nn.Module]:
    """Inside, `model` (crossbar layers, in eval mode) runs on one fixed, seeded draw of its training weight
    noise (`set_weight_noise` η, after the QAT weight quantization) instead of the programmed chip: the condition
    a noise-trained model trains for, used to select its epoch on validation (`TrainConfig.val_noise_draws`).
    The draw is the same for every batch inside; the training noise stream is untouched.
    """
    layers = list(crossbar_layers(model).values())
    saved = [layer._noise_gen for layer in layers]
    for i, layer in enumerate(layers):
        layer._noise_gen = torch.Generator().manual_seed(int(seed) + 7919 * i)
        layer._noisy_eval = {}
    try:
        yield model
    finally:
        for layer, gen in zip(layers, saved, strict=True):
            layer._noise_gen, layer._noisy_eval = gen, None


@torch.no_grad()
def calibrate(model: nn.Module, batches: Iterable[tuple | torch.Tensor]) -> nn.Module:
    """Calibrate activation and ADC ranges of every crossbar layer on data (in eval mode).

    `batches` yields model inputs (a tensor, or a tuple of positional arguments).
    """
    layers = list(crossbar_layers(model).values())
    was_training = model.training
    model.eval()
    contexts = [layer.observing() for layer in layers]
    for c in contexts:
        c.__enter__()
    try:
        for batch in batches:
            model(*batch) if isinstance(batch, tuple) else model(batch)
    finally:
        for c in contexts:
            c.__exit__(None, None, None)
    model.train(was_training)
    return model


def describe(quant: QuantConfig) -> str:
    """Short label of a precision setting, e.g. 'W6/A8', 'W6/A8/G10' (10-bit gate outputs) or 'float'."""
    w = "float" if quant.weight_bits >= FLOAT_BITS else f"W{quant.weight_bits}"
    a = "" if quant.act_bits >= FLOAT_BITS else f"/A{quant.act_bits}"
    g = f"/G{quant.gate_bits}" if quant.act_bits_at("gate") != quant.act_bits_at("preact") else ""
    return w + a + g
