"""Sweeps: one row per setting, float reference exact, error grows with σ, seeds summarised."""

import numpy as np
import pandas as pd
import pytest
import torch

from memgru.config import ModelConfig, QuantConfig
from memgru.errors import MemgruError
from memgru.evaluate import chip_model, summarise, sweep
from memgru.models import build_model
from memgru.tasks.common import SequenceSet
from memgru.train import metric, predict


@pytest.fixture(scope="module")
def task():
    rng = np.random.default_rng(0)
    x = rng.normal(size=(64, 8, 4)).astype(np.float32)
    y = rng.normal(size=(64, 8)).astype(np.float32)
    torch.manual_seed(0)
    model = build_model(ModelConfig(kind="gru_regressor", n_features=4, n_outputs=1, hidden=16, layers=1)).eval()
    return model, SequenceSet(x, y, pd.DataFrame({"i": range(64)}))


def test_float_setting_reproduces_the_model(task):
    model, data = task
    rows = sweep(model, data, calibration=data.x, bits=[32], sigmas=[0.0])
    assert rows.loc[0, "rmse"] == pytest.approx(metric("regression", predict(model, data.x), data.y), rel=1e-5)
    out = predict(model, data.x).squeeze(-1).numpy()
    assert rows.loc[0, "mae"] == pytest.approx(100 * np.abs(out - data.y).mean(), rel=1e-5)
    assert rows.loc[0, "mae"] < rows.loc[0, "rmse"]
    assert rows.loc[0, "act_bits"] == 32


def test_sigma_sweep_degrades_and_summarises_seeds(task):
    model, data = task
    reference = predict(model, data.x)
    deviation = {}
    for sigma in (0.0, 0.1):
        outs = [predict(chip_model(model, 6, 8, sigma, seed, data.x), data.x) for seed in (0, 1, 2)]
        deviation[sigma] = float(np.mean([(o - reference).abs().mean() for o in outs]))
    assert deviation[0.1] > 3 * deviation[0.0]
    rows = sweep(model, data, calibration=data.x, bits=[6], sigmas=[0.0, 0.1], seeds=[0, 1, 2])
    assert len(rows) == 6
    table = summarise(rows)
    assert list(table["seeds"]) == [3, 3] and table["rmse_std"].iloc[1] > 0


def test_snr_sweep_uses_the_task_perturbation(task):
    model, data = task
    calls = []

    def perturb(split, snr, seed):
        calls.append((snr, seed))
        noise = np.random.default_rng(seed).normal(size=split.x.shape).astype(np.float32) * 10 ** (-snr / 20)
        return SequenceSet(split.x + noise, split.y, split.meta)

    rows = sweep(model, data, calibration=data.x, bits=[32], snrs=[None, 0.0, 20.0], seeds=[0], perturb=perturb)
    assert sorted(calls) == [(0.0, 0), (20.0, 0)]
    assert rows["snr_db"].isna().sum() == 1
    with pytest.raises(ValueError, match="perturb"):
        sweep(model, data, calibration=data.x, bits=[32], snrs=[0.0])


def test_gate_outputs_can_have_their_own_precision(task):
    """Gate outputs get their own precision (the rest stays at 4 bits); finer gates bring the chip closer
    to the float model."""
    model, data = task
    chip = chip_model(model, 16, 4, 0.0, 0, data.x, gate_bits=12)
    q = chip.gru.act[0]
    assert {g.bits for g in q.gate.values()} == {12} and {p.bits for p in q.pre.values()} == {4}
    assert q.x.bits == 4 and q.h.bits == 4
    reference = predict(model, data.x)
    coarse = (predict(chip_model(model, 16, 4, 0.0, 0, data.x), data.x) - reference).abs().mean()
    fine = (predict(chip_model(model, 16, 4, 0.0, 0, data.x, gate_bits=12), data.x) - reference).abs().mean()
    assert fine < coarse
    rows = sweep(model, data, calibration=data.x, bits=[6, 32], act_bits=4, gate_bits=12)
    assert list(rows["gate_bits"]) == [12, 32] and list(rows["act_bits"]) == [4, 32]
    assert "gate_bits" not in sweep(model, data, calibration=data.x, bits=[6], act_bits=4)
    with pytest.raises(MemgruError, match="gate_bits"):
        QuantConfig(act_bits=8, gate_bits=1)
