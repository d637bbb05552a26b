"""Fusion quantization planner: device bounds, per-matrix precision, determinism, tolerance 0."""

import itertools

import numpy as np
import pandas as pd
import pytest
import torch

from memgru.config import FLOAT_BITS, DeviceConfig, ModelConfig, QuantConfig
from memgru.errors import MemgruError
from memgru.fusion import (
    PlanConstraints,
    Slot,
    apply_plan,
    evaluator,
    holdout_check,
    holdout_sentence,
    plan_cost,
    planned_model,
    search,
    slots,
    uniform_plan,
)
from memgru.layers import convert, crossbar_layers
from memgru.models import build_model
from memgru.tasks.common import SequenceSet
from memgru.train import predict

FLOAT_CONSTRAINTS = PlanConstraints(max_states=2**16, dac_bits=FLOAT_BITS, lut_bits=FLOAT_BITS, allow_float=True)


def tiny(kind: str = "gru_classifier", seed: int = 0) -> torch.nn.Module:
    torch.manual_seed(seed)
    return build_model(ModelConfig(kind=kind, n_features=3, n_outputs=2 if kind != "gru_regressor" else 1,
                                   hidden=8, layers=2, dropout=0.0)).eval()


def data(n: int = 24, steps: int = 10, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).normal(size=(n, steps, 3)).astype(np.float32)


def test_device_bounds_shape_the_ladders():
    c = PlanConstraints(max_states=8, max_slices=1, dac_bits=6, lut_bits=7)
    assert c.weight_ladder()[0] == 4  # 8 states per device: 2^(b-1) <= 8, no slicing
    assert PlanConstraints(max_states=8, max_slices=2).weight_ladder() == (7, 4, 3, 2)  # 5-7 bits: two pairs, same cost
    assert c.act_ladder("input")[0] == 6 and c.act_ladder("preact")[0] == 7 and c.act_ladder("gate")[0] == 7
    pwl = PlanConstraints(activation_circuit="pwl", adc_bits=5)
    assert pwl.act_ladder("preact")[0] == 5 and pwl.act_ladder("gate")[0] == 5
    assert FLOAT_BITS not in PlanConstraints(allow_float=True).weight_ladder()  # 32 states cannot hold float
    assert FLOAT_CONSTRAINTS.weight_ladder()[0] == FLOAT_BITS
    held = PlanConstraints(act_bits=8)  # weights planned only: every activation has the one rung
    assert held.act_ladder("input") == held.act_ladder("gate") == (8,)
    assert held.weight_ladder() == PlanConstraints().weight_ladder()
    with pytest.raises(MemgruError, match="not allowed at the input point"):
        PlanConstraints(act_bits=10, dac_bits=8)
    chip = convert(tiny(), QuantConfig(weight_bits=16, act_bits=16), c.device(), 0)
    names = {s.name for s in slots(chip, c)}
    assert {"gru.ih_l0", "gru.hh_l1", "head.weight", "gru.l0.input", "gru.l1.preact", "gru.l1.gate",
            "head.input"} <= names
    for s in slots(chip, c):
        assert max(s.ladder) <= (4 if s.kind == "weight" else 7)
    with pytest.raises(MemgruError, match="states per device"):
        PlanConstraints(max_states=1)
    with pytest.raises(MemgruError, match=r"2\.\.16 or 32"):
        PlanConstraints(dac_bits=1)


def test_sliced_weights_pay_whole_device_pairs():
    s = Slot("m", "weight", "gru", "ih_l0", 100, (8, 6), states=32)
    assert s.cost(6) == 600 and s.cost(7) == s.cost(11) == 1200  # 7..11 bits: 2 pairs (32 x 32 states)
    assert s.cost(12) == 1800
    assert Slot("a", "act", "gru", "l0.input", 10, (8,)).cost(5) == 50


def test_apply_plan_sets_each_matrix_and_activation():
    c = PlanConstraints()
    chip = convert(tiny(), QuantConfig(weight_bits=16, act_bits=16), c.device(), 0)
    plan = {"gru.ih_l0": 3, "gru.hh_l0": 5, "head.weight": 2, "gru.l0.input": 4, "gru.l1.gate": 3, "head.input": 2}
    apply_plan(chip, plan)
    pm = chip.gru.programmed()
    assert pm["ih_l0"].quant.weight_bits == 3 and pm["hh_l0"].quant.weight_bits == 5
    assert pm["ih_l1"].quant.weight_bits == 16  # not in the plan: the layer's precision
    assert len(torch.unique(pm["ih_l0"].cmap.g_pos)) <= 4  # 3-bit: 2^(3-1) states per device
    assert chip.gru.act[0].x.bits == chip.gru.act[0].h.bits == 4
    assert all(q.bits == 3 for q in chip.gru.act[1].gate.values())
    assert chip.head.input_quant.bits == 2 and chip.head.programmed()["weight"].quant.weight_bits == 2
    for bad in ({"gru.nope_l0": 4}, {"gru.l7.input": 4}, {"nothing.input": 4}, {"gru.ih_l0": 1}):
        with pytest.raises(MemgruError):
            apply_plan(convert(tiny(), QuantConfig(), DeviceConfig.ideal(), 0), bad)


def test_per_matrix_bits_reach_the_training_forward():
    chip = convert(tiny(), QuantConfig(weight_bits=16), DeviceConfig.ideal(), 0).train()
    apply_plan(chip, {"head.weight": 2})
    x = torch.randn(5, 8)
    w = chip.head.weight
    qmax = 1  # 2-bit symmetric levels -1..1
    scale = w.detach().abs().amax(dim=1, keepdim=True) / qmax
    expected = torch.nn.functional.linear(x, torch.round(w.detach() / scale).clamp(-1, 1) * scale, chip.head.bias)
    assert torch.allclose(chip.head(x), expected, atol=1e-6)


def test_plan_cost_counts_bits_devices_and_slices():
    c = PlanConstraints(max_states=32, max_slices=2)
    model = tiny()
    chip = convert(model, QuantConfig(), c.device(), 0)
    all_slots = slots(chip, c)
    six, seven = (plan_cost(model, uniform_plan(all_slots, b, 8), c) for b in (6, 7))
    weights = sum(p.numel() for n, p in model.named_parameters() if "weight" in n)
    assert six["total_weight_bits"] == 6 * weights and seven["total_weight_bits"] == 7 * weights
    assert seven["devices"] == 2 * six["devices"]  # 7 bits on 32-state devices: two pairs per weight
    assert six["max_states_used"] == 32


def _regression_split(model: torch.nn.Module, seed: int) -> SequenceSet:
    """Targets are the float model's own outputs: float is the only zero-loss precision."""
    x = data(seed=seed)
    y = predict(model, x).squeeze(-1).numpy().astype(np.float32)
    return SequenceSet(x, y, pd.DataFrame({"i": range(len(x))}))


def test_tolerance_zero_keeps_float_precision():
    model = tiny("gru_regressor")
    val = _regression_split(model, 1)
    ev = evaluator(model, val, data(seed=2), FLOAT_CONSTRAINTS, 0.0, [0])
    chip = convert(model, QuantConfig(weight_bits=16, act_bits=16), FLOAT_CONSTRAINTS.device(), 0)
    all_slots = slots(chip, FLOAT_CONSTRAINTS)
    found = search(ev, all_slots, reference=0.0, tolerance=0.0, higher_is_better=False)
    assert found.plan == {s.name: FLOAT_BITS for s in all_slots} and found.within_tolerance
    # with a loose tolerance the same model gets far fewer bits, every one inside its ladder
    loose = search(ev, all_slots, reference=0.0, tolerance=5.0, higher_is_better=False)
    assert all(loose.plan[s.name] in s.ladder for s in all_slots)
    assert sum(loose.plan.values()) < sum(found.plan.values()) and loose.plan_val <= 5.0


def test_search_descends_from_the_fallback_when_the_top_misses_the_tolerance():
    # a metric (higher is better) that is noisy at the top: any plan with a slot at 10 bits scores a
    # point below the reference, so no single step down from the top qualifies; the uniform 6-bit plan
    # meets it, and every slot can lose bits down to 4 without loss
    all_slots = [Slot(f"w{i}", "weight", "m", f"k{i}", 100, (10, 8, 6, 5, 4, 3, 2)) for i in range(3)]
    top = {s.name: 10 for s in all_slots}
    uniform = {s.name: 6 for s in all_slots}

    def ev(plan: dict[str, int]) -> tuple[float, float]:
        if max(plan.values()) == 10:
            return 99.0, 0.0
        return (100.0 if min(plan.values()) >= 4 else 90.0), 0.0

    stuck = search(ev, all_slots, reference=100.0, tolerance=0.0, higher_is_better=True)
    assert stuck.plan == top and not stuck.within_tolerance and stuck.started_from == "top"
    found = search(ev, all_slots, reference=100.0, tolerance=0.0, higher_is_better=True, fallback=uniform)
    assert found.within_tolerance and found.started_from == "fallback"
    assert found.plan == {s.name: 4 for s in all_slots} and found.plan_val == 100.0
    # a fallback value between rungs is raised to the next rung up (7 -> 8); a fallback that misses too
    # changes nothing
    assert search(ev, all_slots, 100.0, 0.0, True, fallback={s.name: 7 for s in all_slots}).plan == found.plan
    worse = search(lambda plan: (99.0, 0.0), all_slots, 100.0, 0.0, True, fallback=uniform)
    assert worse.plan == top and worse.started_from == "top" and not worse.within_tolerance


def test_search_keeps_the_cheaper_descent_when_a_noisy_rejection_freezes_a_slot_above_the_fallback():
    # the top qualifies, but one noisy validation score (w0 at 8 bits) freezes the big slot w0 at 10 bits
    # in the descent from the top: that plan costs more than the uniform 6-bit fallback, which qualifies,
    # so the planner also descends from the fallback, where w0 never visits 8 bits, and keeps that plan
    all_slots = [Slot("w0", "weight", "m", "k0", 1000, (10, 8, 6, 5, 4, 3, 2)),
                 *(Slot(f"w{i}", "weight", "m", f"k{i}", 100, (10, 8, 6, 5, 4, 3, 2)) for i in (1, 2))]
    uniform = {s.name: 6 for s in all_slots}

    def ev(plan: dict[str, int]) -> tuple[float, float]:
        if plan["w0"] == 8:
            return 99.0, 0.0
        return (100.0 if min(plan.values()) >= 4 else 90.0), 0.0

    alone = search(ev, all_slots, reference=100.0, tolerance=0.0, higher_is_better=True)
    assert alone.plan == {"w0": 10, "w1": 4, "w2": 4} and alone.started_from == "top"
    both = search(ev, all_slots, reference=100.0, tolerance=0.0, higher_is_better=True, fallback=uniform)
    assert both.plan == {s.name: 4 for s in all_slots} and both.started_from == "fallback_cheaper"
    assert both.within_tolerance and both.plan_val == 100.0
    assert {step["from"] for step in both.steps} == {"top", "fallback"}
    # a top descent that ends cheaper than the fallback is kept without a second descent
    plain = search(lambda plan: (100.0 if min(plan.values()) >= 4 else 90.0, 0.0), all_slots, 100.0, 0.0, True,
                   fallback=uniform)
    assert plain.started_from == "top" and {step["from"] for step in plain.steps} == {"top"}


def test_search_reports_its_descent_as_a_chain_of_ever_cheaper_plans():
    all_slots = [Slot(f"w{i}", "weight", "m", f"k{i}", 100 * (i + 1), (10, 8, 6, 5, 4, 3, 2)) for i in range(3)]
    found = search(lambda plan: (100.0 if min(plan.values()) >= 4 else 90.0, 0.0), all_slots, 100.0, 0.0, True)
    chain = found.chain
    assert chain[0] == {s.name: 10 for s in all_slots} and chain[-1] == found.plan
    assert len(chain) == 1 + sum(step["accepted"] for step in found.steps)
    by_name = {s.name: s for s in all_slots}
    for before, after in itertools.pairwise(chain):  # one slot one rung down per step
        changed = [n for n in before if before[n] != after[n]]
        assert len(changed) == 1
        ladder = by_name[changed[0]].ladder
        assert ladder.index(after[changed[0]]) == ladder.index(before[changed[0]]) + 1


def test_holdout_check_undoes_the_descent_until_the_plan_holds_on_unseen_sequences():
    chain = [{"w": b} for b in (8, 6, 5, 4, 3)]
    held = {8: 100.0, 6: 99.8, 5: 99.6, 4: 98.9, 3: 97.0}  # the two cheapest plans only held on the search set
    evaluate = lambda plan: (held[plan["w"]], 0.0)  # noqa: E731
    kept, rows = holdout_check(chain, evaluate, reference=100.0, tolerance=0.5, higher_is_better=True)
    assert kept == 2 and [r["chain_index"] for r in rows] == [4, 3, 2]
    assert [r["within"] for r in rows] == [False, False, True] and rows[-1]["steps_undone"] == 2
    kept, rows = holdout_check(chain, evaluate, 100.0, 5.0, True)  # the search's plan holds: nothing undone
    assert kept == 4 and len(rows) == 1
    kept, rows = holdout_check(chain, lambda plan: (90.0, 0.0), 100.0, 0.5, True)  # nothing holds: the start
    assert kept == 0 and len(rows) == 5 and not rows[-1]["within"]
    kept, _ = holdout_check(chain, lambda plan: (1.0 + 0.1 * (8 - plan["w"]), 0.0), 1.0, 0.25, False)  # RMSE
    assert kept == 1  # RMSE 1.5 / 1.4 / 1.3 exceed 1.0 + 0.25; 1.2 at 6 bits does not
    assert "2 of the descent's steps were undone" in holdout_sentence(
        {"sequences": 700, "float": 93.0, "uniform_w6a8": 92.5, "tolerance": 0.5, "steps_undone": 2,
         "within_tolerance": True})
    assert holdout_sentence({"sequences": 0, "skipped": "switched off (--holdout 0)"}) == \
        "No held-out check: switched off (--holdout 0)."
    assert holdout_sentence(None) == ""


def test_search_is_deterministic_under_variation_and_respects_bounds():
    model = tiny()
    x = data(48, seed=3)
    y = (predict(model, x).argmax(-1)).numpy().astype(np.int64)
    val = SequenceSet(x, y, pd.DataFrame({"i": range(48)}))
    c = PlanConstraints(max_states=16, max_slices=1, dac_bits=6, lut_bits=6)
    chip = convert(model, QuantConfig(weight_bits=16, act_bits=16), c.device(), 0)
    all_slots = slots(chip, c)
    runs = [search(evaluator(model, val, x[:16], c, 0.05, [0, 1]), all_slots, 100.0, 10.0, True) for _ in range(2)]
    assert runs[0].plan == runs[1].plan and runs[0].sensitivity == runs[1].sensitivity
    for s in all_slots:
        assert runs[0].plan[s.name] <= (5 if s.kind == "weight" else 6)


def test_planned_model_programs_the_plan_and_calibrates():
    c = PlanConstraints()
    model = tiny()
    plan = uniform_plan(slots(convert(model, QuantConfig(), c.device(), 0), c), 4, 6)
    chip = planned_model(model, plan, c, data(seed=4), sigma=0.05, seed=3)
    assert not chip.training and chip.gru.seed == 3 and chip.gru.device.prog_sigma == 0.05
    assert not any(layer.needs_calibration() for layer in crossbar_layers(chip).values())
    assert {pm.quant.weight_bits for pm in chip.gru.programmed().values()} == {4}
    assert torch.isfinite(predict(chip, data(seed=5))).all()
