"""Quantizer properties (Hypothesis): level count, exact zero, error bound, idempotence, monotonicity, STE."""

import numpy as np
import pytest
import torch
from hypothesis import example, given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from memgru.errors import MemgruError
from memgru.quant import ActivationQuantizer, fake_quant_weight, inject_weight_noise, quantize_weight, weight_scale

finite = st.floats(-100, 100, allow_nan=False, width=32)
matrices = arrays(np.float32, st.tuples(st.integers(1, 6), st.integers(1, 40)), elements=finite)
bit_widths = st.integers(2, 16)
fast = settings(max_examples=60, deadline=None)


@fast
@given(matrices, bit_widths, st.booleans())
def test_weight_levels_are_symmetric_integers(w, bits, per_channel):
    q, scale = quantize_weight(torch.from_numpy(w), bits, per_channel)
    qmax = 2 ** (bits - 1) - 1
    assert torch.equal(q, q.round())
    assert q.abs().max() <= qmax
    assert (scale > 0).all()


@fast
@given(bit_widths)
def test_weight_grid_has_2_pow_b_minus_1_levels_and_exact_zero(bits):
    w = torch.linspace(-1, 1, 4 * 2**bits + 1, dtype=torch.float64).view(1, -1)
    deq = fake_quant_weight(w, bits)
    assert torch.unique(deq).numel() == 2**bits - 1
    assert (deq == 0).any()
    assert fake_quant_weight(torch.zeros(2, 3), bits).eq(0).all()


@fast
@given(matrices, bit_widths, st.booleans())
def test_weight_error_bound_idempotence_monotonicity(w, bits, per_channel):
    w = torch.from_numpy(w)
    scale = weight_scale(w, bits, per_channel)
    deq = fake_quant_weight(w, bits, per_channel)
    assert ((deq - w).abs() <= scale[:, None] / 2 * (1 + 1e-5) + 1e-7).all()
    assert torch.allclose(fake_quant_weight(deq, bits, per_channel), deq, atol=1e-6 * float(scale.max()))
    order = torch.argsort(w, dim=1)
    sorted_deq = torch.gather(deq, 1, order)
    assert (sorted_deq[:, 1:] >= sorted_deq[:, :-1]).all()


@fast
@given(arrays(np.float32, st.integers(2, 200), elements=finite), st.integers(2, 16))
@example(np.array([1e-45, 1e-45], dtype=np.float32), 2)  # a denormal range once gave NaN
def test_activation_quantizer_properties(x, bits):
    x = torch.from_numpy(x)
    q = ActivationQuantizer(bits).eval()
    y = q(x)  # first call calibrates on x
    scale, zero_point = q.qparams()
    assert 0 <= zero_point <= 2**bits - 1
    assert torch.unique(y).numel() <= 2**bits
    assert q(torch.zeros(3)).eq(0).all(), "0 must be exactly representable"
    rounding = 4 * torch.finfo(torch.float32).eps * x.abs()  # float32 arithmetic near |x| (e.g. 100 at 16 bits)
    assert ((y - x).abs() <= scale / 2 * (1 + 1e-4) + 1e-6 + rounding).all(), "error <= scale/2 inside the range"
    assert torch.allclose(q(y), y, atol=scale * 1e-4)
    ys = q(torch.sort(x).values)
    assert (ys[1:] >= ys[:-1]).all()


def test_activation_quantizer_clips_outside_range_and_uses_ste():
    q = ActivationQuantizer(4)
    q.set_range(-1.0, 1.0)
    q.eval()
    x = torch.tensor([-3.0, -0.5, 0.2, 5.0], requires_grad=True)
    y = q(x)
    half = q.scale / 2 + 1e-6  # the zero point is an integer, so the grid may shift by up to half a step
    low, high = float(y[0].detach()), float(y[-1].detach())
    assert -1.0 - half <= low < -0.8 and 0.8 < high <= 1.0 + half
    y.sum().backward()
    assert x.grad.tolist() == [0.0, 1.0, 1.0, 0.0]


def test_activation_fast_path_equals_fused_op():
    torch.manual_seed(0)
    q = ActivationQuantizer(6).eval()
    x = torch.randn(1000) * 3
    q(x)
    with torch.no_grad():
        fast_y = q(x)
    slow_y = q(x.clone().requires_grad_(True))
    assert torch.equal(fast_y, slow_y.detach())


def test_weight_fake_quant_gradient_is_straight_through():
    w = torch.randn(4, 5, requires_grad=True)
    fake_quant_weight(w, 3).pow(2).sum().backward()
    assert torch.allclose(w.grad, 2 * fake_quant_weight(w.detach(), 3), atol=1e-6)


def test_calibration_widens_then_freezes():
    q = ActivationQuantizer(8)
    q.observing = True
    for x in (torch.tensor([0.0, 1.0]), torch.tensor([-2.0, 0.5])):
        assert torch.equal(q(x), x), "observing passes values through"
    q.observing = False
    assert (float(q.lo), float(q.hi)) == (-2.0, 1.0)
    q.eval()(torch.tensor([100.0]))
    assert float(q.hi) == 1.0, "a frozen range is not widened by later data"


def test_weight_noise_statistics_and_gradient():
    w = torch.full((200, 200), 0.5, requires_grad=True)
    gen = torch.Generator().manual_seed(0)
    noisy = inject_weight_noise(w, 0.1, gen)
    assert torch.equal(w.detach(), torch.full((200, 200), 0.5)), "the weights themselves are untouched"
    assert float((noisy.detach() - 0.5).std()) == pytest.approx(0.05, rel=0.03)
    noisy.sum().backward()
    assert torch.equal(w.grad, torch.ones_like(w))
    assert inject_weight_noise(w, 0.0) is w


def test_percentile_calibration_ignores_rare_outliers():
    x = torch.cat([torch.linspace(-1, 1, 100_000), torch.tensor([500.0])])
    minmax, pct = ActivationQuantizer(8), ActivationQuantizer(8, percentile=99.9)
    for q in (minmax, pct):
        q.observing = True
        q(x)
        q.observing = False
    assert float(minmax.hi) == 500.0
    assert 0.99 < float(pct.hi) < 1.0 and -1.0 < float(pct.lo) < -0.99
    inside = torch.linspace(-0.9, 0.9, 50)
    assert (pct.eval()(inside) - inside).abs().max() < (minmax.eval()(inside) - inside).abs().max() / 50


def test_row_scaled_weight_noise_follows_each_rows_full_scale():
    """η relative to each row's max|W|: a row 100x smaller gets 100x less noise (matrix scale: the same)."""
    w = torch.cat([torch.full((1, 20000), 1.0), torch.full((1, 20000), 0.01)])
    gen = torch.Generator().manual_seed(0)
    row = (inject_weight_noise(w, 0.1, gen, scale="row") - w).std(dim=1)
    assert row[0].item() == pytest.approx(0.1, rel=0.03) and row[1].item() == pytest.approx(0.001, rel=0.03)
    matrix = (inject_weight_noise(w, 0.1, gen) - w).std(dim=1)
    assert matrix[1].item() == pytest.approx(0.1, rel=0.03)
    with pytest.raises(MemgruError, match="weight-noise scale"):
        inject_weight_noise(w, 0.1, gen, scale="column")
