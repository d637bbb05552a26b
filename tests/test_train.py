"""A small crossbar GRU learns a toy sequence task with weight-noise injection and with 4-bit QAT."""

import numpy as np
import pandas as pd
import pytest
import torch

from memgru.config import DeviceConfig, ModelConfig, QuantConfig, TrainConfig
from memgru.errors import MemgruError
from memgru.layers import CrossbarGRU, convert, noisy_weights, set_weight_noise
from memgru.models import build_model
from memgru.plots import kept_epochs
from memgru.tasks.common import SequenceSet
from memgru.train import evaluate_model, mean_abs_error, metric, noisy_metric, predict, train_model


def _toy(n: int, seed: int) -> SequenceSet:
    """Which of three frequencies is the noisy sinusoid (random phase)? Chance = 33 %."""
    rng = np.random.default_rng(seed)
    label = rng.integers(0, 3, n)
    t = np.arange(24)
    phase = rng.uniform(0, 2 * np.pi, n)
    freq = np.array([0.08, 0.18, 0.3])[label]
    x = np.sin(2 * np.pi * freq[:, None] * t + phase[:, None]) + rng.normal(0, 0.3, (n, 24))
    return SequenceSet(x[:, :, None].astype(np.float32), label.astype(np.int64), pd.DataFrame({"i": range(n)}))


@pytest.mark.parametrize(
    "train_cfg",
    [
        TrainConfig(epochs=12, batch_size=32, lr=1e-2, weight_noise=0.1, seed=0),
        TrainConfig(epochs=12, batch_size=32, lr=1e-2, qat_weight_bits=4, qat_act_bits=8, seed=0),
    ],
    ids=["weight-noise", "qat-4bit"],
)
def test_toy_task_is_learned_on_the_crossbar(train_cfg, tmp_path):
    train, val = _toy(384, 0), _toy(192, 1)
    torch.manual_seed(0)
    model = build_model(ModelConfig(n_features=1, n_outputs=3, hidden=24, layers=1, dropout=0.0))
    trained, history = train_model(model, train, val, train_cfg, log_path=tmp_path / "log.jsonl")
    assert isinstance(trained.gru, CrossbarGRU)
    assert len(history) == train_cfg.epochs
    assert len((tmp_path / "log.jsonl").read_text().splitlines()) == train_cfg.epochs
    assert history[-1]["train_loss"] < history[0]["train_loss"]
    bits = train_cfg.qat_weight_bits if train_cfg.qat_weight_bits < 32 else 6
    chip = convert(trained, QuantConfig(weight_bits=bits, act_bits=8), DeviceConfig.rram_1t1r(), seed=3).eval()
    _, accuracy = evaluate_model(chip, val)
    assert accuracy > 80, f"chip accuracy {accuracy:.1f} % (chance 33 %)"


def test_training_is_reproducible():
    train = _toy(64, 0)
    cfg = TrainConfig(epochs=2, batch_size=16, weight_noise=0.05, seed=4)
    runs = []
    for _ in range(2):
        torch.manual_seed(0)
        model = build_model(ModelConfig(n_features=1, n_outputs=3, hidden=8, layers=1, dropout=0.0))
        runs.append(train_model(model, train, train, cfg)[1])
    assert [r["train_loss"] for r in runs[0]] == [r["train_loss"] for r in runs[1]]


def _hold_first(n: int, seed: int, length: int = 40) -> SequenceSet:
    """Regression: every step's target is the sequence's first input (noise afterwards), so the model
    must carry it in its hidden state for the whole sequence."""
    rng = np.random.default_rng(seed)
    x = rng.normal(0, 1, (n, length, 1)).astype(np.float32)
    first = rng.uniform(-0.5, 0.5, n).astype(np.float32)
    x[:, 0, 0] = first * 4
    y = np.repeat(first[:, None], length, axis=1)
    return SequenceSet(x, y, pd.DataFrame({"i": range(n)}))


def test_forward_state_in_chunks_equals_one_pass():
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="gru_regressor", n_features=3, n_outputs=1, hidden=8, layers=2,
                                    dropout=0.0)).eval()
    chip = convert(model, QuantConfig(weight_bits=16, act_bits=16), DeviceConfig.ideal(), seed=0).eval()
    x = torch.randn(2, 30, 3)
    for m in (model, chip):
        whole, h_whole = m.forward_state(x)
        h, parts = None, []
        for t in range(0, 30, 7):
            out, h = m.forward_state(x[:, t : t + 7], h)
            parts.append(out)
        torch.testing.assert_close(torch.cat(parts, dim=1), whole)
        torch.testing.assert_close(h, h_whole)
        torch.testing.assert_close(m(x), whole)


def test_tbptt_carries_the_state_across_chunks():
    """Chunks of 8 steps over 40-step sequences: the target (the first input) is only visible in the
    first chunk, so a low error over all 40 steps needs the state carried from chunk to chunk."""
    train, val = _hold_first(256, 0), _hold_first(128, 1)
    cfg = TrainConfig(epochs=25, batch_size=32, lr=1e-2, tbptt_steps=8, seed=0)
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="gru_regressor", n_features=1, n_outputs=1, hidden=16, layers=1,
                                    dropout=0.0))
    trained, history = train_model(model, train, val, cfg)
    out = predict(trained, val.x).squeeze(-1)[:, 8:]  # the chunks after the first
    late_rmse = float(((out - torch.as_tensor(val.y[:, 8:])) ** 2).mean().sqrt() * 100)
    assert late_rmse < 10, f"RMSE after the first chunk {late_rmse:.1f} (predicting 0 gives ~29)"
    assert history[-1]["train_loss"] < history[0]["train_loss"]


def test_tbptt_needs_a_per_step_regressor():
    model = build_model(ModelConfig(n_features=1, n_outputs=3, hidden=8, layers=1, dropout=0.0))
    with pytest.raises(MemgruError, match="tbptt_steps"):
        train_model(model, _toy(32, 0), _toy(16, 1), TrainConfig(epochs=1, batch_size=16, tbptt_steps=8))
    with pytest.raises(MemgruError, match="tbptt_steps"):
        TrainConfig(tbptt_steps=-1)


def _noisy_toy_model(eta: float) -> torch.nn.Module:
    torch.manual_seed(0)
    model = build_model(ModelConfig(n_features=1, n_outputs=3, hidden=8, layers=1, dropout=0.0))
    return set_weight_noise(convert(model, QuantConfig(), DeviceConfig.ideal(), seed=0), eta).eval()


def test_noisy_weights_is_one_fixed_seeded_draw_and_leaves_no_trace():
    model, x = _noisy_toy_model(0.2), torch.as_tensor(_toy(16, 2).x)
    with torch.no_grad():
        clean = model(x)
        gen_state = [layer._noise_gen.get_state() for layer in (model.gru, model.head)]
        with noisy_weights(model, 5):
            first, again = model(x), model(x[:8])
        with noisy_weights(model, 5):
            same_seed = model(x)
        with noisy_weights(model, 6):
            other_seed = model(x)
        after = model(x)
    assert not torch.allclose(first, clean, atol=1e-3)  # the noise acts
    assert torch.equal(again, first[:8])  # one draw for every batch inside the context
    assert torch.equal(same_seed, first) and not torch.allclose(other_seed, first, atol=1e-3)
    assert torch.equal(after, clean)  # the chip is untouched afterwards
    for layer, state in zip((model.gru, model.head), gen_state, strict=True):  # the training stream too
        assert torch.equal(layer._noise_gen.get_state(), state)


def test_noise_run_keeps_the_epoch_best_under_weight_noise():
    train, val = _toy(128, 0), _toy(96, 1)
    cfg = TrainConfig(epochs=4, batch_size=32, lr=1e-2, weight_noise=0.15, seed=1, val_noise_draws=2)
    torch.manual_seed(0)
    model = build_model(ModelConfig(n_features=1, n_outputs=3, hidden=8, layers=1, dropout=0.0))
    trained, history = train_model(model, train, val, cfg)
    noisy = [row["val_metric_noisy"] for row in history]
    assert noisy_metric(trained, val, 2) == pytest.approx(max(noisy), abs=1e-6)
    kept = kept_epochs(pd.DataFrame(history).assign(run="noise"), "accuracy")
    assert kept["val_metric_noisy"].item() == max(noisy) and kept["selected_on"].item().endswith("weight noise")
    clean_cfg = TrainConfig.from_dict({**cfg.to_dict(), "val_noise_draws": 0})
    torch.manual_seed(0)
    model = build_model(ModelConfig(n_features=1, n_outputs=3, hidden=8, layers=1, dropout=0.0))
    assert all("val_metric_noisy" not in row for row in train_model(model, train, val, clean_cfg)[1])


@pytest.mark.parametrize("draws", [-1, 1.5, True])
def test_val_noise_draws_must_be_a_count(draws):
    with pytest.raises(MemgruError, match="val_noise_draws"):
        TrainConfig(val_noise_draws=draws)


def test_row_scaled_noise_reaches_every_crossbar_layer():
    from memgru.train import prepare_for_training

    model = build_model(ModelConfig(n_features=1, n_outputs=3, hidden=8, layers=1, dropout=0.0))
    prepared = prepare_for_training(model, TrainConfig(weight_noise=0.1, noise_scale="row"))
    assert {(layer.weight_noise, layer.noise_scale) for layer in (prepared.gru, prepared.head)} == {(0.1, "row")}
    with pytest.raises(MemgruError, match="noise_scale"):
        TrainConfig(noise_scale="column")


def test_regression_scores_clamp_outputs_to_the_soc_range_but_the_loss_does_not():
    """SOC outside 0-100 % is reported clamped (as predict shows it), so it is scored clamped too."""
    out = torch.tensor([[[-0.1], [0.5], [1.2]], [[0.2], [0.4], [0.9]]])
    y = np.array([[0.0, 0.5, 1.0], [0.0, 0.5, 1.0]], np.float32)
    err = np.array([0.0, 0.0, 0.0, 0.2, -0.1, -0.1])
    assert metric("regression", out, y) == pytest.approx(100 * np.sqrt(np.mean(err**2)), rel=1e-6)
    assert mean_abs_error(out, y) == pytest.approx(100 * np.mean(np.abs(err)), rel=1e-6)

    class Fixed(torch.nn.Module):
        def forward(self, x: torch.Tensor) -> torch.Tensor:
            return out

    data = SequenceSet(np.zeros((2, 3, 1), np.float32), y, pd.DataFrame({"i": [0, 1]}))
    loss, rmse = evaluate_model(Fixed(), data)
    raw = np.array([-0.1, 0.0, 0.2, 0.2, -0.1, -0.1])
    assert loss == pytest.approx(np.mean(raw**2), rel=1e-6)
    assert rmse == pytest.approx(metric("regression", out, y))
