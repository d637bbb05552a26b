"""Quantizers: symmetric per-channel weights, asymmetric calibrated activations, both with a
straight-through estimator (STE) so quantization-aware training gets gradients.

Example:
    >>> import torch
    >>> w = torch.tensor([[0.5, -1.0, 0.25]])
    >>> q, scale = quantize_weight(w, bits=3)           # levels -3..3
    >>> q.tolist(), round(float(scale[0]), 4)
    ([[2.0, -3.0, 1.0]], 0.3333)
    >>> a = ActivationQuantizer(bits=8)
    >>> _ = a(torch.linspace(-1, 3, 50))                # first call calibrates the range
    >>> a.zero_point                                    # 0.0 maps to this integer
    64
"""

from __future__ import annotations

import torch
from torch import nn

from memgru.config import FLOAT_BITS, NOISE_SCALES
from memgru.errors import MemgruError

MIN_SCALE = 1e-12
"""Smallest quantization step: narrower ranges (e.g. all-zero or denormal data) use a unit step instead,
which represents them as 0 and avoids dividing by a step that underflows."""


def weight_qmax(bits: int) -> int:
    """Largest symmetric integer level for `bits`-bit weights: 2^(bits-1) - 1."""
    if not 2 <= bits <= 16:
        raise MemgruError(f"weight bits must be 2..16, got {bits}")
    return 2 ** (bits - 1) - 1


def weight_scale(w: torch.Tensor, bits: int, per_channel: bool = True) -> torch.Tensor:
    """Scale per output row (or one, broadcast to every row) so that max|w| maps to the top level.

    Rows that are all zero (or below `MIN_SCALE`) get scale 1: they quantize to exactly 0.
    """
    qmax = weight_qmax(bits)
    amax = w.detach().abs().amax(dim=1) if per_channel else w.detach().abs().amax().expand(w.shape[0])
    return torch.where(amax / qmax > MIN_SCALE, amax / qmax, torch.ones_like(amax))


def quantize_weight(w: torch.Tensor, bits: int, per_channel: bool = True) -> tuple[torch.Tensor, torch.Tensor]:
    """Integer levels (as float tensor, in -(2^(b-1)-1)..2^(b-1)-1) and per-row scales of a [out, in] matrix."""
    scale = weight_scale(w, bits, per_channel)
    qmax = weight_qmax(bits)
    q = torch.clamp(torch.round(w.detach() / scale[:, None]), -qmax, qmax)
    return q, scale


def fake_quant_weight(w: torch.Tensor, bits: int, per_channel: bool = True) -> torch.Tensor:
    """Quantize-dequantize a [out, in] weight matrix symmetrically; the gradient passes straight through.

    `bits` = 32 returns `w` unchanged.
    """
    if bits >= FLOAT_BITS:
        return w
    scale = weight_scale(w, bits, per_channel)
    qmax = weight_qmax(bits)
    zero = torch.zeros(w.shape[0], dtype=torch.int32, device=w.device)
    return torch.fake_quantize_per_channel_affine(w, scale.float(), zero, 0, -qmax, qmax)


def inject_weight_noise(
    w: torch.Tensor, eta: float, generator: torch.Generator | None = None, scale: str = "matrix"
) -> torch.Tensor:
    """Weight-noise injection for training: W + N(0, (eta * max|W|)^2), a new tensor (W untouched).

    `scale` "matrix": max|W| over the whole matrix; "row": each output row's own max|W| — the full scale a
    per-channel-quantized row is programmed with. Programming variation σ (`DeviceConfig.prog_sigma`, on both
    devices of a differential pair, clipped at the conductance window, so a device at g_min only moves up)
    moves the effective weights by about 1.2·σ of their row's max|W| (1.15–1.19 measured for σ = 0.1–0.05),
    so row-scaled eta ≈ 1.2·σ trains for it. The noise is a constant for autograd: gradients reach W unchanged.
    """
    if eta <= 0:
        return w
    if scale not in NOISE_SCALES:
        raise MemgruError(f"weight-noise scale must be one of {', '.join(NOISE_SCALES)}, got {scale!r}")
    magnitude = w.detach().abs()
    std = eta * (magnitude.amax(dim=-1, keepdim=True) if scale == "row" and w.dim() > 1 else magnitude.max())
    noise = torch.randn(w.shape, generator=generator, dtype=w.dtype, device=w.device)
    return w + noise * std


class ActivationQuantizer(nn.Module):
    """Asymmetric activation quantizer over a calibrated [lo, hi] range with 2^bits levels.

    The range comes from data: in training mode (QAT) it follows an exponential moving average of
    each batch's min/max; while `observing` is set (see `memgru.calibrate`) every call widens
    the observed min/max and passes values through unchanged; otherwise the frozen range is used.
    An uncalibrated quantizer calibrates on the first tensor it sees. A fixed range (e.g. [0, 1] after a
    sigmoid) can be given instead; it is then never re-observed. The range always contains 0, so 0 is
    exactly representable. Backward is the STE: gradient 1 inside the range, 0 where clipped.
    """

    def __init__(
        self, bits: int = FLOAT_BITS, fixed_range: tuple[float, float] | None = None, percentile: float = 100.0
    ) -> None:
        super().__init__()
        self.percentile = float(percentile)
        if bits != FLOAT_BITS and not 2 <= bits <= 16:
            raise MemgruError(f"activation bits must be 2..16 or 32, got {bits}")
        self.bits = bits
        self.fixed = fixed_range is not None
        self.observing = False
        lo, hi = fixed_range if fixed_range is not None else (float("inf"), float("-inf"))
        self.register_buffer("lo", torch.tensor(float(lo)))
        self.register_buffer("hi", torch.tensor(float(hi)))
        self._qp: tuple[float, int] | None = None

    def _load_from_state_dict(self, *args: object, **kwargs: object) -> None:
        self._qp = None
        super()._load_from_state_dict(*args, **kwargs)  # type: ignore[arg-type]

    def set_bits(self, bits: int) -> None:
        """Change the precision (2..16, or 32 = off), keeping the calibrated range."""
        if isinstance(bits, bool) or not isinstance(bits, int) or (bits != FLOAT_BITS and not 2 <= bits <= 16):
            raise MemgruError(f"activation bits must be 2..16 or 32, got {bits!r}")
        self.bits = bits
        self._qp = None

    def set_range(self, lo: float, hi: float) -> None:
        """Set the calibrated range [lo, hi] by hand (inf/-inf forgets it)."""
        self.lo.fill_(lo)
        self.hi.fill_(hi)
        self._qp = None

    @property
    def enabled(self) -> bool:
        """True when this quantizer changes values (bits < 32)."""
        return self.bits < FLOAT_BITS

    @property
    def calibrated(self) -> bool:
        """True once a range is known."""
        return self._qp is not None or bool(self.hi >= self.lo)

    def observe(self, x: torch.Tensor) -> None:
        """Widen the range to cover `x` (no-op for a fixed range)."""
        if self.fixed or x.numel() == 0:
            return
        x = x.detach()
        self._qp = None
        lo, hi = x.min(), x.max()
        if self.percentile < 100.0:
            flat = x.flatten().float()
            flat = flat[:: max(1, flat.numel() // (1 << 22))]  # torch.quantile's size limit; a strided subsample
            q = torch.tensor([1.0 - self.percentile / 100.0, self.percentile / 100.0])
            lo, hi = torch.quantile(flat, q)
        self.lo.copy_(torch.minimum(self.lo, lo))
        self.hi.copy_(torch.maximum(self.hi, hi))

    def _track(self, x: torch.Tensor, momentum: float = 0.1) -> None:
        """Quantization-aware training: follow the batch min/max with an exponential moving average."""
        lo, hi = x.detach().min(), x.detach().max()
        self._qp = None
        if not self.calibrated:
            self.lo.copy_(lo)
            self.hi.copy_(hi)
        else:
            self.lo.lerp_(lo, momentum)
            self.hi.lerp_(hi, momentum)

    def qparams(self) -> tuple[float, int]:
        """(scale, zero_point): x ≈ (q - zero_point) * scale with q in 0..2^bits-1."""
        if self._qp is not None:
            return self._qp
        qmax = 2**self.bits - 1
        lo = min(float(self.lo), 0.0)
        hi = max(float(self.hi), 0.0)
        scale = (hi - lo) / qmax if (hi - lo) / qmax > MIN_SCALE else 1.0
        zero_point = round(-lo / scale)
        qp = (scale, min(max(zero_point, 0), qmax))
        if self.calibrated and not self.observing and not self.training:
            self._qp = qp
        return qp

    @property
    def scale(self) -> float:
        """Step between adjacent levels (same unit as the activation)."""
        return self.qparams()[0]

    @property
    def zero_point(self) -> int:
        """Integer level that represents 0.0."""
        return self.qparams()[1]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Quantize-dequantize `x` (or observe it while calibrating)."""
        if not self.enabled:
            return x
        if self.training and not self.fixed and not self.observing:
            self._track(x)
        elif self.observing or not self.calibrated:
            self.observe(x)
            if self.observing:
                return x
        scale, zero_point = self.qparams()
        qmax = 2**self.bits - 1
        if torch.is_grad_enabled() and x.requires_grad:
            return torch.fake_quantize_per_tensor_affine(x, scale, zero_point, 0, qmax)
        # Same arithmetic as the fused op (round(x / scale) + zero point), in fewer, vectorised kernels.
        return (x * (1.0 / scale)).round_().clamp_(-zero_point, qmax - zero_point).mul_(scale)

    def extra_repr(self) -> str:
        return f"bits={self.bits}, range=[{float(self.lo):.4g}, {float(self.hi):.4g}], fixed={self.fixed}"
