"""CrossbarGRU / CrossbarLinear / convert: golden equivalence with torch.nn, call signature,
calibration, seeds, batch consistency, gradients."""

import copy

import pytest
import torch
from torch import nn

from memgru import CrossbarGRU, CrossbarLinear, DeviceConfig, MemgruError, QuantConfig, calibrate, convert
from memgru.config import ModelConfig
from memgru.layers import crossbar_layers, reprogram, set_weight_noise
from memgru.models import GRUClassifier, build_model

IDEAL = DeviceConfig.ideal()
Q16 = QuantConfig(weight_bits=16, act_bits=16)
FLOAT = QuantConfig()


def _gru(batch_first=True, seed=0):
    torch.manual_seed(seed)
    return nn.GRU(12, 24, num_layers=2, batch_first=batch_first)


@pytest.mark.parametrize("quant, tol", [(FLOAT, 1e-5), (Q16, 1e-3)])
@pytest.mark.parametrize("batch_first", [True, False])
@pytest.mark.parametrize("with_h0", [True, False])
@pytest.mark.parametrize("bias", ["digital", "row"])
def test_golden_ideal_crossbar_gru_equals_torch_gru(quant, tol, batch_first, with_h0, bias):
    gru = _gru(batch_first)
    x = torch.randn(6, 25, 12) if batch_first else torch.randn(25, 6, 12)
    h0 = torch.randn(2, 6, 24) if with_h0 else None
    mem = convert(gru, quant, DeviceConfig.ideal(bias=bias), seed=0).eval()
    with torch.no_grad():
        ref_out, ref_h = gru(x, h0)
        out, h = mem(x, h0)
    assert out.shape == ref_out.shape and h.shape == ref_h.shape
    assert float((out - ref_out).abs().max()) <= tol
    assert float((h - ref_h).abs().max()) <= tol


def test_golden_unbatched_input():
    gru = _gru(batch_first=False)
    mem = convert(gru, Q16, IDEAL, seed=0).eval()
    x, h0 = torch.randn(9, 12), torch.randn(2, 24) * 0.3
    with torch.no_grad():
        (ref, _), (out, h) = gru(x, h0), mem(x, h0)
    assert out.shape == (9, 24) and h.shape == (2, 24)
    assert float((out - ref).abs().max()) <= 1e-3


def test_golden_training_two_sgd_steps_match_torch():
    """As aihwkit's analog RNN tests: with ideal float tiles, training follows torch.nn.GRU exactly."""
    gru = _gru()
    mem = convert(gru, FLOAT, IDEAL, seed=0).train()
    x, target = torch.randn(4, 10, 12), torch.randn(4, 10, 24)
    opts = [torch.optim.SGD(m.parameters(), lr=0.5) for m in (gru, mem)]
    for _ in range(2):
        for model, opt in zip((gru, mem), opts, strict=True):
            opt.zero_grad()
            nn.functional.mse_loss(model(x)[0], target).backward()
            opt.step()
    for (name, p), (_, q) in zip(gru.named_parameters(), mem.named_parameters(), strict=True):
        assert torch.allclose(p, q, atol=1e-6), name
    with torch.no_grad():
        assert torch.allclose(gru.eval()(x)[0], mem.eval()(x)[0], atol=1e-5)


def test_convert_replaces_layers_and_leaves_original_untouched():
    model = build_model(ModelConfig(n_features=12, n_outputs=3, hidden=16, layers=2))
    before = copy.deepcopy(model.state_dict())
    mem = convert(model, QuantConfig(weight_bits=4, act_bits=8), DeviceConfig.rram_1t1r(), seed=1)
    assert isinstance(model.gru, nn.GRU) and isinstance(model.head, nn.Linear)
    assert isinstance(mem.gru, CrossbarGRU) and isinstance(mem.head, CrossbarLinear)
    mem.eval()(torch.randn(2, 7, 12))
    assert all(torch.equal(before[k], v) for k, v in model.state_dict().items())
    assert set(crossbar_layers(mem)) == {"gru", "head"}
    assert mem.gru.seed != mem.head.seed


def test_state_dict_is_compatible_with_torch_gru():
    gru = _gru()
    mem = CrossbarGRU(12, 24, num_layers=2, batch_first=True, quant=FLOAT, device=IDEAL)
    missing, unexpected = mem.load_state_dict(gru.state_dict(), strict=False)
    assert not unexpected and all(".lo" in k or ".hi" in k for k in missing)


def test_quantized_noisy_chip_is_seeded():
    gru, x = _gru(), torch.randn(3, 15, 12)
    dev = DeviceConfig.rram_1t1r(prog_sigma=0.05)
    q = QuantConfig(weight_bits=6, act_bits=8)
    with torch.no_grad():
        a, b, c = (convert(gru, q, dev, seed=s).eval()(x)[0] for s in (1, 1, 2))
        ref = gru(x)[0]
    assert torch.equal(a, b), "same seed -> identical outputs"
    assert not torch.equal(a, c), "different seeds -> different outputs"
    assert 1e-3 < float((a - ref).abs().mean()) < 0.2, "noisy but still a GRU"


def test_more_bits_less_error():
    gru, x = _gru(), torch.randn(8, 20, 12)
    with torch.no_grad():
        ref = gru(x)[0]
        err = {b: float((convert(gru, QuantConfig(weight_bits=b, act_bits=b), IDEAL).eval()(x)[0] - ref).abs().mean())
               for b in (3, 5, 8, 12)}
    assert err[3] > err[5] > err[8] > err[12]


def test_batch_consistency_each_item_alone_equals_the_batch():
    gru = _gru()
    mem = convert(gru, QuantConfig(weight_bits=6, act_bits=8), DeviceConfig.rram_1t1r(read_sigma=0.0), seed=0).eval()
    x = torch.randn(5, 12, 12)
    calibrate(mem, [x])
    with torch.no_grad():
        batch = mem(x)[0]
        alone = torch.cat([mem(x[i : i + 1])[0] for i in range(5)])
    assert torch.allclose(batch, alone, atol=1e-5)


def test_calibrate_freezes_ranges_and_reprogram_changes_the_chip():
    gru = _gru()
    mem = convert(gru, QuantConfig(weight_bits=6, act_bits=6), DeviceConfig.rram_1t1r(read_sigma=0.0), seed=0)
    calibrate(mem, [torch.randn(4, 10, 12)])
    assert not mem.needs_calibration() and mem.training, "calibrate restores the mode"
    mem.eval()
    x = torch.randn(2, 10, 12)
    with torch.no_grad():
        first = mem(x)[0]
        assert torch.equal(first, mem(x)[0]), "no read noise: the programmed chip is deterministic"
        reprogram(mem, 99)
        assert not torch.equal(first, mem(x)[0])


def test_gradients_flow_through_qat_and_weight_noise():
    mem = convert(_gru(), QuantConfig(weight_bits=4, act_bits=6), IDEAL, seed=0)
    set_weight_noise(mem, 0.05).train()
    out, _ = mem(torch.randn(3, 8, 12))
    out.sum().backward()
    for name, p in mem.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, name


def test_bad_inputs_raise_clear_errors():
    mem = convert(_gru(), FLOAT, IDEAL)
    with pytest.raises(MemgruError, match="expects input of shape"):
        mem(torch.randn(2, 5, 7))
    with pytest.raises(MemgruError, match="h0 must have shape"):
        mem(torch.randn(2, 5, 12), torch.randn(1, 2, 24))
    with pytest.raises(MemgruError, match="bidirectional"):
        convert(nn.GRU(3, 4, bidirectional=True), FLOAT, IDEAL)
    with pytest.raises(MemgruError, match="PackedSequence"):
        packed = nn.utils.rnn.pack_padded_sequence(torch.randn(2, 5, 12), [5, 3], batch_first=True)
        mem(packed)


def test_pwl_activation_circuit_changes_the_output_a_little():
    gru, x = _gru(), torch.randn(3, 10, 12) * 0.3
    with torch.no_grad():
        exact = convert(gru, Q16, IDEAL).eval()(x)[0]
        pwl = convert(gru, Q16, DeviceConfig.ideal(activation_circuit="pwl")).eval()(x)[0]
    assert 1e-4 < float((exact - pwl).abs().max()) < 0.5


def test_classifier_end_to_end_shapes():
    model = GRUClassifier(ModelConfig(n_features=12, n_outputs=4, hidden=16, layers=1))
    mem = convert(model, QuantConfig(weight_bits=5, act_bits=8), DeviceConfig.rram_1t1r(), seed=0).eval()
    assert mem(torch.randn(3, 9, 12)).shape == (3, 4)


@pytest.mark.parametrize("circuit", ["lut", "pwl"])
def test_gate_lookup_tables_match_the_quantizer_path(circuit, monkeypatch):
    """The eval fast path (gate periphery as tables) gives the numbers of quantizers + functions in turn."""
    gru, x = _gru(), torch.randn(4, 15, 12)
    device = DeviceConfig.rram_1t1r(read_sigma=0.0, activation_circuit=circuit)
    mem = convert(gru, QuantConfig(weight_bits=6, act_bits=6), device, seed=0).eval()
    calibrate(mem, [x])
    assert mem.act[0].lookup_tables(circuit) is not None
    with torch.no_grad():
        fast = mem(x)[0]
        monkeypatch.setattr(type(mem.act[0]), "lookup_tables", lambda self, circuit: None)
        reference = mem(x)[0]
    assert torch.equal(fast, reference)
