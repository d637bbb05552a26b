"""Weight <-> conductance mapping, bit slicing, non-ideality statistics and the tiled MVM."""

import math

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

from memgru.config import DeviceConfig, QuantConfig
from memgru.crossbar import (
    STUCK_HRS,
    STUCK_LRS,
    apply_nonidealities,
    conductance_to_weight,
    program,
    slices_needed,
    weight_to_conductance,
)
from memgru.errors import MemgruError

RRAM = DeviceConfig.rram_1t1r()


@settings(max_examples=40, deadline=None)
@given(st.integers(2, 16), st.integers(0, 10_000), st.sampled_from([4, 16, 32, 2**16]))
def test_mapping_bounds_levels_and_round_trip(bits, seed, states):
    device = DeviceConfig.ideal(g_min=2.0, g_max=20.0, states=states)
    w = torch.randn(7, 23, generator=torch.Generator().manual_seed(seed), dtype=torch.float64)
    quant = QuantConfig(weight_bits=bits)
    cmap = weight_to_conductance(w, quant, device)
    for g in (cmap.g_pos, cmap.g_neg):
        assert g.min() >= device.g_min - 1e-9 and g.max() <= device.g_max + 1e-9
        assert torch.unique(g).numel() <= min(2 ** (bits - 1), states)
    assert cmap.n_slices == slices_needed(quant, device)
    back = conductance_to_weight(cmap)
    assert ((back - w).abs() <= cmap.scale[:, None] / 2 + 1e-9).all(), "round trip within half an LSB"


def test_float_weights_round_trip_exactly():
    w = torch.randn(5, 9, dtype=torch.float64)
    cmap = weight_to_conductance(w, QuantConfig(), RRAM)
    assert torch.allclose(conductance_to_weight(cmap), w, atol=1e-12)
    assert cmap.g_pos.min() >= RRAM.g_min and cmap.g_pos.max() <= RRAM.g_max + 1e-12


def test_differential_pair_uses_one_side_per_weight():
    w = torch.tensor([[0.5, -0.5, 0.0]], dtype=torch.float64)
    cmap = weight_to_conductance(w, QuantConfig(weight_bits=4), RRAM)
    g_pos, g_neg = cmap.g_pos[0, 0], cmap.g_neg[0, 0]
    assert g_pos[0] > RRAM.g_min and g_neg[0] == RRAM.g_min
    assert g_pos[1] == RRAM.g_min and g_neg[1] > RRAM.g_min
    assert g_pos[2] == g_neg[2] == RRAM.g_min


def test_bit_slicing_and_refusal():
    device = DeviceConfig.ideal(states=16)
    assert slices_needed(QuantConfig(weight_bits=5), device) == 1  # 16 states per device
    assert slices_needed(QuantConfig(weight_bits=6), device) == 2  # 32 states -> two base-16 digits
    assert slices_needed(QuantConfig(weight_bits=16), device) == 4
    w = torch.randn(6, 10, dtype=torch.float64)
    cmap = weight_to_conductance(w, QuantConfig(weight_bits=8), device)
    assert cmap.n_slices == 2 and cmap.base == 16
    assert torch.unique(cmap.g_pos).numel() <= 16
    assert ((conductance_to_weight(cmap) - w).abs() <= cmap.scale[:, None] / 2 + 1e-9).all()
    with pytest.raises(MemgruError, match="need 32 conductance states per device but the device has 16"):
        weight_to_conductance(w, QuantConfig(weight_bits=6), device.replace(slicing="refuse"))


def test_bit_sliced_matrix_computes_the_same_product():
    torch.manual_seed(1)
    w, x = torch.randn(20, 30), torch.randn(8, 30)
    quant = QuantConfig(weight_bits=8)
    one = program(w, None, quant, DeviceConfig.ideal(), seed=0)
    sliced = program(w, None, quant, DeviceConfig.ideal(states=4, rows=16, cols=8, adc_bits=16), seed=0)
    assert sliced.cmap.n_slices == 4
    assert torch.allclose(one.mvm(x), sliced.mvm(x), atol=2e-3)


def test_programming_variation_has_the_configured_sigma():
    device = DeviceConfig.ideal(g_min=2.0, g_max=20.0, prog_sigma=0.03)
    w = torch.full((400, 400), 0.5, dtype=torch.float64)
    w[:, 0] = 1.0  # sets the row scale so every other device sits mid-window, far from clipping
    cmap = weight_to_conductance(w, QuantConfig(weight_bits=8), device)
    chip = apply_nonidealities(cmap, device, seed=3)
    dev = (chip.g_pos - cmap.g_pos)[..., 1:] / (device.g_max - device.g_min)
    assert float(dev.std()) == pytest.approx(0.03, rel=0.10)
    assert abs(float(dev.mean())) < 0.001


def test_stuck_fractions_match_binomial():
    device = DeviceConfig.ideal(stuck_hrs=0.02, stuck_lrs=0.005)
    w = torch.randn(300, 200, dtype=torch.float64)
    cmap = weight_to_conductance(w, QuantConfig(weight_bits=6), device)
    chip = apply_nonidealities(cmap, device, seed=11)
    n = 2 * w.numel()
    for code, p, level in ((STUCK_HRS, 0.02, device.g_min), (STUCK_LRS, 0.005, device.g_max)):
        count = int((chip.stuck_pos == code).sum() + (chip.stuck_neg == code).sum())
        assert abs(count - n * p) <= 3 * math.sqrt(n * p * (1 - p))
        assert (chip.g_pos[chip.stuck_pos == code] == level).all()


def test_drift_follows_power_law_and_compensation_restores_scale():
    device = DeviceConfig.ideal(drift_nu=0.05, drift_time=1e4, drift_t0=1.0, drift_compensation=False)
    w = torch.randn(50, 60, dtype=torch.float64)
    cmap = weight_to_conductance(w, QuantConfig(weight_bits=8), device)
    chip = apply_nonidealities(cmap, device, seed=0)
    assert torch.allclose(chip.g_pos, cmap.g_pos * 1e4**-0.05)
    compensated = program(w, None, QuantConfig(weight_bits=8), device.replace(drift_compensation=True), seed=0)
    assert compensated.chip.drift_gain == pytest.approx(1e4**0.05, rel=1e-6)
    assert torch.allclose(compensated.effective_weight().double(), conductance_to_weight(cmap), atol=1e-5)


def test_same_seed_same_chip_different_seed_different_chip():
    w = torch.randn(40, 50)
    a, b, c = (program(w, None, QuantConfig(weight_bits=6), RRAM, seed=s) for s in (5, 5, 6))
    assert torch.equal(a.chip.g_pos, b.chip.g_pos) and torch.equal(a.chip.stuck_neg, b.chip.stuck_neg)
    assert not torch.equal(a.chip.g_pos, c.chip.g_pos)
    assert torch.equal(a.cmap.g_pos, c.cmap.g_pos), "the targets do not depend on the seed"


def test_read_noise_statistics_per_mvm():
    device = DeviceConfig.ideal(g_min=0.0, g_max=10.0, read_sigma=0.01)
    w = torch.randn(64, 100)
    pm = program(w, None, QuantConfig(weight_bits=8), device, seed=0)
    x = torch.randn(1, 100).repeat(4000, 1)
    y = pm.mvm(x)
    clean = x[:1] @ pm.effective_weight().t()
    # Two devices per weight, each with std read_sigma * window, seen through scale / step per level.
    expected = math.sqrt(2) * 0.01 * 10.0 / pm.cmap.step * pm.cmap.scale * x[0].norm()
    measured = (y - clean).std(dim=0)
    assert torch.allclose(measured, expected.float(), rtol=0.08)
    assert not torch.equal(pm.mvm(x[:1]), pm.mvm(x[:1])), "fresh read noise on every MVM"


def test_adc_quantizes_each_tile_partial_sum():
    torch.manual_seed(0)
    w, x = torch.randn(6, 300), torch.randn(50, 300)
    device = DeviceConfig.ideal(rows=100, cols=8, adc_bits=4)
    pm = program(w, None, QuantConfig(weight_bits=8), device, seed=0)
    y = pm.mvm(x)  # calibrates the ADC ranges on this batch
    assert pm.n_row_tiles == 3 and pm.adc_range.shape == (3, 1, 6)
    partial = torch.stack([x[:, i * 100 : (i + 1) * 100] @ pm.w_tiles[0, i] for i in range(3)])
    lsb = pm.adc_range / 7
    expected = ((partial / lsb).round().clamp(-7, 7) * lsb).sum(0) * pm.scale_out
    assert torch.allclose(y, expected, atol=1e-4)
    exact = x @ pm.effective_weight().t()
    assert 0 < float((y - exact).abs().max()) < float(exact.abs().max())


def test_row_bias_is_programmed_with_the_weights():
    w, b, x = torch.randn(10, 12), torch.randn(10), torch.randn(5, 12)
    digital = program(w, b, QuantConfig(), DeviceConfig.ideal(), seed=0)
    row = program(w, b, QuantConfig(), DeviceConfig.ideal(bias="row"), seed=0)
    assert row.rows_total == 13 and row.bias is None and digital.bias is not None
    assert torch.allclose(digital.mvm(x), row.mvm(x), atol=1e-5)
    assert torch.allclose(row.mvm(x), x @ w.t() + b, atol=1e-5)


def test_cost_and_tiles_describe_the_arrays():
    device = DeviceConfig.ideal(rows=128, cols=128)
    pm = program(torch.randn(130, 300), None, QuantConfig(weight_bits=6), device, seed=0)
    cost = pm.cost()
    assert (cost["row_tiles"], cost["col_tiles"], cost["arrays"]) == (3, 3, 9)
    assert cost["devices"] == 2 * 130 * 300
    tiles = pm.tiles()
    assert len(tiles) == 9 and tiles[0]["g_pos"].shape == (64, 128)
    assert sum(t["g_pos"].size for t in tiles) == 130 * 300
    assert np.isfinite(pm.summary()["weight_error_rms"])


def test_programming_variation_moves_weights_by_about_1p2_sigma_of_the_row_scale():
    """What `inject_weight_noise(scale="row")` documents: η ≈ 1.2·σ matches programming variation σ."""
    w = torch.randn(192, 128, generator=torch.Generator().manual_seed(0))
    exact = program(w, None, QuantConfig(weight_bits=16), DeviceConfig.ideal(), seed=1).effective_weight()
    for sigma in (0.05, 0.1):
        noisy = program(w, None, QuantConfig(weight_bits=16), DeviceConfig.ideal(prog_sigma=sigma), seed=1)
        rel = (noisy.effective_weight() - exact) / w.abs().amax(dim=1, keepdim=True)
        assert 1.1 * sigma < rel.std().item() < 1.25 * sigma
