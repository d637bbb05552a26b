"""Fusion quantization planner: precision per matrix and per activation from measured task
performance and the limits of the devices and the periphery (the paper's central method).

Vocabulary:
- a **slot** is something whose precision can be chosen: a weight matrix (`gru.ih_l0`, the input
  weights of GRU layer 0; `gru.hh_l0`, its recurrent weights; `head.weight`, the read-out) or an
  activation point (`gru.l0.input`: the values driven onto the rows through the DAC, x_t and h_{t-1};
  `gru.l0.preact`: gate pre-activations addressing the sigmoid/tanh periphery; `gru.l0.gate`: the
  periphery's outputs; `head.input`: the read-out's row inputs).
- **device awareness** (`PlanConstraints`): a weight of b bits needs 2^(b-1) conductance states per
  device of its differential pair; with fewer states it is bit-sliced over several pairs (more devices,
  more ADC conversions), and at most `max_slices` pairs are allowed. Row inputs cannot be finer than
  the DAC. The pre-activation addresses the sigmoid/tanh look-up table (`lut`, `lut_bits` address
  bits) or, for a piecewise-linear analog periphery (`pwl`), is digitised by the ADC; gate outputs are
  a table word (`lut`) or an ADC code (`pwl`). These bounds give every slot its ladder of allowed bits.
- **performance analysis** (`sensitivity`): the validation metric with one slot lowered at a time
  (every other slot at the top of its ladder), mean over device seeds at programming variation σ.
  Each slot's descent stops at the first rung whose loss exceeds the tolerance.
- **the plan** (`search`): from the top of every ladder, the slot whose next rung down saves the
  most cost per metric point it lost in the sensitivity analysis is lowered one rung; the move is
  kept if the joint plan stays within the tolerance of the float model on validation, otherwise that
  slot is frozen. Rungs below a slot's floor (the lowest rung within tolerance on its own, where the
  analysis stopped) are tried last: single-slot measurements are noisy and slots interact, so only
  the joint measurement decides. The plan is within tolerance by construction (when the top of the
  ladders is; when it is not, the descent starts from the uniform W6/A8 plan if that one is).
  **Held-out check** (`holdout_check`): the plan is then measured on validation sequences the search
  never saw, and the descent's steps are undone until it is within the tolerance there too.
  Costs: bits x weights stored (weight slots; a bit-sliced weight pays every device pair it uses),
  bits x values converted per time step (activation slots). Then `plan_task` fine-tunes the plan's
  weight precisions with QAT for a few epochs and reports plan, cost and test metric next to the
  paper's uniform 6-bit weights.

`python -m memgru plan --task T` runs `plan_task` and writes `results/plan_<task>.json`.
"""

from __future__ import annotations

import math
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, Literal

import numpy as np
from torch import nn

from memgru.config import FLOAT_BITS, DeviceConfig, QuantConfig, TrainConfig
from memgru.crossbar import slices_needed
from memgru.errors import MemgruError
from memgru.evaluate import calibrated
from memgru.layers import CrossbarGRU, CrossbarLinear, convert, crossbar_layers
from memgru.tasks.common import SequenceSet
from memgru.train import finetune_config, metric, predict, task_kind, train_model

LADDER = (FLOAT_BITS, 16, 12, 10, 8, 7, 6, 5, 4, 3, 2)
"""Candidate precisions of every slot, highest first (32 = float, kept only where allowed)."""
PAPER_WEIGHT_BITS = 6
"""The paper's uniform choice of weight precision, the baseline a plan is compared with."""
PAPER_ACT_BITS = 8
"""Activation precision of the uniform baseline (as in this project's bits tables)."""
MATCH_UNIFORM = "w6a8"
"""Tolerance keyword: allow what the uniform W6/A8 model loses on validation."""
GRU_POINTS = ("input", "preact", "gate")
"""Activation points of one GRU layer, in the order the signal passes them."""


@dataclass(frozen=True)
class PlanConstraints:
    """What the hardware allows: device states, slicing, converters and the activation periphery."""

    max_states: int = 32
    """Distinguishable conductance states per device (32 = 5 bits, multi-level RRAM with write-verify)."""
    max_slices: int = 2
    """Device pairs one weight may be spread over by bit slicing (1 = no slicing)."""
    dac_bits: int = 8
    """DAC resolution of row inputs [bits] (32 = ideal)."""
    adc_bits: int = FLOAT_BITS
    """ADC resolution of partial sums [bits] (32 = ideal ADC; it also bounds `pwl` periphery codes)."""
    activation_circuit: Literal["lut", "pwl"] = "lut"
    """How sigmoid/tanh are computed: digital look-up table or piecewise-linear analog circuit."""
    lut_bits: int = 10
    """Address (and word) width of the sigmoid/tanh look-up table [bits]."""
    allow_float: bool = False
    """Allow float (32-bit) slots: a simulation reference, not a chip (needs `max_states` >= 2^16)."""
    act_percentile: float = 100.0
    """Activation range calibration of every planned chip (`QuantConfig.act_percentile`; the CLI passes the
    planned checkpoint's, `pipeline.task_act_percentile`)."""
    act_bits: int | None = None
    """Hold every activation point at this precision (e.g. 8, as in the uniform W6/A8 chip) and plan the weights
    only; None plans activations too. Must fit the DAC / periphery bounds."""

    def __post_init__(self) -> None:
        if isinstance(self.max_states, bool) or not isinstance(self.max_states, int) or self.max_states < 2:
            raise MemgruError(f"max states per device must be an integer >= 2, got {self.max_states!r}")
        if isinstance(self.max_slices, bool) or not isinstance(self.max_slices, int) or self.max_slices < 1:
            raise MemgruError(f"max slices must be an integer >= 1, got {self.max_slices!r}")
        for name in ("dac_bits", "adc_bits", "lut_bits"):
            QuantConfig(act_bits=getattr(self, name))  # same range check: 2..16 or 32
        QuantConfig(act_percentile=self.act_percentile)  # same range check: (50, 100]
        if self.act_bits is not None:
            QuantConfig(act_bits=self.act_bits)  # same range check: 2..16 or 32
            for point in ("input", "preact", "gate"):
                if self.act_bits not in self._act_rungs(point):
                    raise MemgruError(f"fixed activation bits {self.act_bits} are not allowed at the {point} point "
                                      f"(allowed: {', '.join(map(str, self._act_rungs(point)))})")
        if self.activation_circuit not in ("lut", "pwl"):
            raise MemgruError(f"activation_circuit must be 'lut' or 'pwl', got {self.activation_circuit!r}")

    def device(self, sigma: float = 0.0) -> DeviceConfig:
        """The simulated device: ideal except for these limits and programming variation `sigma`."""
        return DeviceConfig.ideal(
            states=self.max_states, slicing="bitslice", dac_bits=self.dac_bits, adc_bits=self.adc_bits,
            activation_circuit=self.activation_circuit, prog_sigma=sigma,
        )

    def weight_ladder(self) -> tuple[int, ...]:
        """Weight precisions the devices allow, highest first. Of the precisions that need the same
        number (>= 2) of bit-sliced device pairs only the highest is kept: the others cost the same."""
        device = self.device()
        allowed: list[int] = []
        seen_slices: set[int] = set()
        for bits in LADDER:
            if bits >= FLOAT_BITS:
                if self.allow_float and self.max_states >= 2**16:
                    allowed.append(bits)
                continue
            n = slices_needed(QuantConfig(weight_bits=bits), device)
            if n <= self.max_slices and (n == 1 or n not in seen_slices):
                allowed.append(bits)
                seen_slices.add(n)
        return tuple(allowed)

    def act_ladder(self, point: str) -> tuple[int, ...]:
        """Precisions allowed at activation point `point` (input, preact, gate), highest first; only
        `act_bits` when that is fixed."""
        rungs = self._act_rungs(point)
        return rungs if self.act_bits is None else tuple(b for b in rungs if b == self.act_bits)

    def _act_rungs(self, point: str) -> tuple[int, ...]:
        if point == "input":
            bound = self.dac_bits
        else:
            bound = self.lut_bits if self.activation_circuit == "lut" else self.adc_bits
        return tuple(b for b in LADDER if b <= bound and (b < FLOAT_BITS or self.allow_float))


@dataclass(frozen=True)
class Slot:
    """One precision choice of the model."""

    name: str
    """Identifier, e.g. `gru.ih_l0` or `gru.l0.preact`."""
    kind: Literal["weight", "act"]
    """Weight matrix or activation point."""
    layer: str
    """Module name of the crossbar layer holding it."""
    key: str
    """Matrix name in the layer (`ih_l0`, `weight`) or activation point (`l0.input`, `input`)."""
    size: int
    """Weights stored (weight slot) or values converted per time step (activation slot)."""
    ladder: tuple[int, ...]
    """Allowed bits, highest first."""
    states: int = 2**16
    """Conductance states per device (weight slots: bit slicing makes a weight cost whole device pairs)."""

    def cost(self, bits: int) -> int:
        """Cost proxy at `bits`: bits x size for activations (bits converted per step) and for weights
        that fit one device pair; a bit-sliced weight pays every pair it occupies in full
        (slices x bits one pair holds), so e.g. 7-bit weights on 32-state devices cost as much as 12."""
        if self.kind == "act" or bits >= FLOAT_BITS:
            return bits * self.size
        pair_bits = int(math.log2(self.states)) + 1
        slices = slices_needed(QuantConfig(weight_bits=bits), DeviceConfig.ideal(states=self.states))
        return self.size * (bits if slices == 1 else slices * pair_bits)


def slots(model: nn.Module, constraints: PlanConstraints) -> list[Slot]:
    """Every precision slot of a converted model (crossbar layers), with ladders from `constraints`."""
    result = []
    wl = constraints.weight_ladder()
    if not wl:
        raise MemgruError(
            f"no weight precision fits {constraints.max_states} states per device and {constraints.max_slices} slice(s)"
        )
    for lname, layer in crossbar_layers(model).items():
        for mname, (w, _) in layer._matrices().items():
            result.append(Slot(f"{lname}.{mname}", "weight", lname, mname, int(w.numel()), wl, constraints.max_states))
        if isinstance(layer, CrossbarGRU):
            three_h = 3 * layer.hidden_size
            for k in range(layer.num_layers):
                fan_in = layer.input_size if k == 0 else layer.hidden_size
                sizes = {"input": fan_in + layer.hidden_size, "preact": three_h, "gate": three_h}
                for point in GRU_POINTS:
                    result.append(Slot(f"{lname}.l{k}.{point}", "act", lname, f"l{k}.{point}", sizes[point],
                                       constraints.act_ladder(point)))
        elif isinstance(layer, CrossbarLinear):
            result.append(Slot(f"{lname}.input", "act", lname, "input", layer.in_features,
                               constraints.act_ladder("input")))
    empty = [s.name for s in result if not s.ladder]
    if empty:
        raise MemgruError(f"the constraints leave no precision for {', '.join(empty)}")
    return result


def apply_plan(model: nn.Module, plan: dict[str, int]) -> nn.Module:
    """Set the precision of each slot named in `plan` on a converted model (in place; returns it)."""
    layers = crossbar_layers(model)
    matrix_bits: dict[str, dict[str, int]] = {}
    for name, bits in plan.items():
        lname, _, key = name.rpartition(".")
        if lname in layers:  # a weight matrix (`gru.ih_l0`) or a Linear's input (`head.input`)
            layer = layers[lname]
            if key == "input" and isinstance(layer, CrossbarLinear):
                layer.input_quant.set_bits(int(bits))
                continue
            matrix_bits.setdefault(lname, {})[key] = int(bits)
            continue
        lname, _, point = name.rpartition(".")
        lname, _, sub = lname.rpartition(".")
        layer = layers.get(lname)
        index = int(sub[1:]) if sub[:1] == "l" and sub[1:].isdigit() else -1
        if not isinstance(layer, CrossbarGRU) or not 0 <= index < layer.num_layers or point not in GRU_POINTS:
            raise MemgruError(f"unknown precision slot {name!r}")
        q = layer.act[index]
        quantizers = {"input": [q.x, q.h], "preact": list(q.pre.values()), "gate": list(q.gate.values())}[point]
        for quantizer in quantizers:
            quantizer.set_bits(int(bits))
    for lname, bits in matrix_bits.items():
        layers[lname].set_matrix_bits(bits)
    return model


BASE_QUANT = QuantConfig(weight_bits=16, act_bits=16)
"""Conversion precision before a plan is applied: every activation quantizer enabled (so that
calibration records its range whatever bits the plan gives it later)."""


def planned_model(
    model: nn.Module, plan: dict[str, int], constraints: PlanConstraints, calibration: np.ndarray,
    sigma: float = 0.0, seed: int = 0,
) -> nn.Module:
    """`model` programmed with the mixed-precision `plan` at variation `sigma`, calibrated, in eval mode."""
    chip = convert(model, replace(BASE_QUANT, act_percentile=constraints.act_percentile), constraints.device(sigma),
                   seed)
    return calibrated(apply_plan(chip, plan), calibration)


def uniform_plan(all_slots: Sequence[Slot], weight_bits: int, act_bits: int) -> dict[str, int]:
    """Every weight slot at `weight_bits` and every activation slot at `act_bits` (capped by its ladder)."""
    return {s.name: min(weight_bits if s.kind == "weight" else act_bits, s.ladder[0]) for s in all_slots}


def plan_cost(model: nn.Module, plan: dict[str, int], constraints: PlanConstraints) -> dict[str, Any]:
    """Hardware cost of a plan: weight bits in total, devices, arrays, conductance states used, ADC
    conversions and activation bits converted per time step (summed over matrices)."""
    chip = convert(model, BASE_QUANT, constraints.device(), 0)
    apply_plan(chip, plan)
    devices = arrays = adc = weight_bits = weights = 0
    states = 0
    for layer in crossbar_layers(chip).values():
        for name, pm in layer.programmed().items():
            c = pm.cost()
            devices, arrays, adc = devices + c["devices"], arrays + c["arrays"], adc + c["adc_conversions_per_mvm"]
            bits = layer.matrix_quant(name).weight_bits
            n = pm.out_features * pm.in_features
            weight_bits, weights = weight_bits + bits * n, weights + n
            states = max(states, min(layer.matrix_quant(name).levels_per_device or 2**16, constraints.max_states))
    act = [s for s in slots(chip, constraints) if s.kind == "act"]
    return {
        "total_weight_bits": int(weight_bits),
        "mean_weight_bits": round(weight_bits / max(weights, 1), 3),
        "devices": int(devices),
        "arrays": int(arrays),
        "max_states_used": int(states),
        "adc_conversions_per_step": int(adc),
        "activation_bits_per_step": int(sum(s.cost(plan.get(s.name, s.ladder[0])) for s in act)),
    }


def _worse(higher_is_better: bool, value: float, reference: float) -> float:
    """How much worse `value` is than `reference` in metric points (negative = better)."""
    return reference - value if higher_is_better else value - reference


@dataclass
class Search:
    """Everything the planner measured and decided (JSON-able with `asdict`)."""

    reference: float
    """Validation metric of the float model."""
    top: float
    """Validation metric with every slot at the top of its ladder."""
    sensitivity: list[dict[str, Any]]
    """One row per (slot, bits) measured: val metric (mean over seeds), std, loss vs float."""
    floors: dict[str, int]
    """Lowest rung of each slot within tolerance on its own."""
    steps: list[dict[str, Any]]
    """The descent: each slot lowered one rung in turn, the joint plan's metric, accepted or not."""
    plan: dict[str, int]
    """The chosen precision of every slot."""
    plan_val: float
    """Validation metric of the plan (mean over seeds)."""
    within_tolerance: bool
    """False when neither the top of every ladder nor the fallback plan is within the tolerance."""
    started_from: str = "top"
    """Where the kept descent started: `top` (every slot at the top of its ladder), `fallback` (the
    fallback plan, when the top missed the tolerance and the fallback did not) or `fallback_cheaper`
    (the fallback plan, when the descent from the top ended costlier than the fallback and the
    descent from the fallback ended cheaper)."""
    chain: list[dict[str, int]] = field(default_factory=list)
    """The kept descent's plans in order, from where it started to `plan` (each one step cheaper)."""


def search(
    evaluate: Callable[[dict[str, int]], tuple[float, float]],
    all_slots: Sequence[Slot],
    reference: float,
    tolerance: float,
    higher_is_better: bool,
    progress: Callable[[str], None] | None = None,
    fallback: dict[str, int] | None = None,
) -> Search:
    """Choose per-slot bits: a sensitivity analysis, then a greedy joint descent within the tolerance.

    `evaluate(plan) -> (mean, std)` measures the validation metric of a full plan. `reference` is
    the float model's metric; `tolerance` is in metric points (accuracy % or RMSE %). The descent
    starts from the top of every ladder; when that misses the tolerance (quantization noise on a small
    validation set can put the most precise chip a sequence below float) and `fallback` (e.g. the
    uniform W6/A8 plan, each value raised to the nearest rung of its slot's ladder; a slot it omits stays
    at the top) is within it, the descent starts from `fallback` instead. The greedy descent freezes a
    slot at its first rejected step, so on a small validation set one noisy rejection can leave it
    above the fallback's bits: when the descent from the top ends costlier (sum of `Slot.cost`) than a
    fallback within the tolerance, a second descent starts from the fallback and the cheaper plan is
    kept. Either way the plan is never costlier than a plan known to qualify.
    """
    if not tolerance >= 0:
        raise MemgruError(f"tolerance must be >= 0 metric points, got {tolerance}")
    say = progress or (lambda _: None)
    top_plan = {s.name: s.ladder[0] for s in all_slots}
    top, _ = evaluate(top_plan)
    loss: dict[tuple[str, int], float] = {}
    rows, floors = [], {}
    for s in all_slots:
        loss[(s.name, s.ladder[0])] = _worse(higher_is_better, top, reference)
        floors[s.name] = s.ladder[0]
        for bits in s.ladder[1:]:
            mean, std = evaluate({**top_plan, s.name: bits})
            lost = _worse(higher_is_better, mean, reference)
            loss[(s.name, bits)] = lost
            rows.append({"slot": s.name, "kind": s.kind, "bits": bits, "val_metric": mean, "val_std": std,
                         "loss_vs_float": lost})
            if lost > tolerance:
                break
            floors[s.name] = bits
        say(f"sensitivity {s.name}: floor {floors[s.name]} bits")
    by_name = {s.name: s for s in all_slots}
    slack = max(tolerance / 10.0, 1e-3)
    steps: list[dict[str, Any]] = []

    def within(v: float) -> bool:
        return _worse(higher_is_better, v, reference) <= tolerance

    def cost(p: dict[str, int]) -> int:
        return sum(by_name[name].cost(bits) for name, bits in p.items())

    def descend(plan: dict[str, int], value: float, origin: str) -> tuple[dict[str, int], float, list]:
        """Greedy descent from `plan`: lower the most cost-effective slot a rung while within tolerance;
        returns the final plan, its value and the chain of accepted plans."""
        frozen = {s.name for s in all_slots if plan[s.name] == s.ladder[-1]}
        chain = [dict(plan)]
        while True:
            best, best_score = None, -math.inf
            for s in all_slots:
                if s.name in frozen:
                    continue
                cur = plan[s.name]
                nxt = s.ladder[s.ladder.index(cur) + 1]
                extra = max(loss.get((s.name, nxt), math.inf) - loss.get((s.name, cur), 0.0), 0.0)
                score = (s.cost(cur) - s.cost(nxt)) / (extra + slack)  # 0 for rungs the analysis never reached
                if score > best_score:
                    best, best_score = s.name, score
            if best is None:
                return plan, value, chain
            slot = by_name[best]
            trial = {**plan, best: slot.ladder[slot.ladder.index(plan[best]) + 1]}
            trial_value, _ = evaluate(trial)
            accepted = within(trial_value)
            steps.append({"slot": best, "bits": trial[best], "val_metric": trial_value, "accepted": accepted,
                          "from": origin})
            if accepted:
                plan, value = trial, trial_value
                chain.append(dict(plan))
                say(f"lowered {best} to {trial[best]} bits: val {trial_value:.3f}")
            if not accepted or plan[best] == slot.ladder[-1]:
                frozen.add(best)

    plan, value, started_from = dict(top_plan), top, "top"
    start = None if fallback is None else {
        s.name: min((b for b in s.ladder if b >= fallback.get(s.name, s.ladder[0])), default=s.ladder[0])
        for s in all_slots}
    if start is not None and not within(top):
        start_value, _ = evaluate(start)
        if within(start_value):
            plan, value, started_from = start, start_value, "fallback"
            say(f"the top of the ladders misses the tolerance (val {top:.3f}); descending from the fallback plan "
                f"(val {start_value:.3f})")
    plan, value, chain = descend(plan, value, started_from)
    if started_from == "top" and start is not None and within(value) and cost(plan) > cost(start):
        start_value, _ = evaluate(start)
        if within(start_value):
            say(f"the descent from the top ended costlier than the fallback plan (val {start_value:.3f}); "
                "descending from the fallback too")
            other, other_value, other_chain = descend(start, start_value, "fallback")
            if cost(other) < cost(plan):
                plan, value, started_from, chain = other, other_value, "fallback_cheaper", other_chain
    ok = _worse(higher_is_better, value, reference) <= tolerance
    return Search(reference, top, rows, floors, steps, plan, value, ok, started_from, chain)


MIN_HOLDOUT = 200
"""Fewest held-out validation sequences `plan_task` checks a plan on; with fewer the check is skipped."""


def holdout_check(
    chain: Sequence[dict[str, int]],
    evaluate: Callable[[dict[str, int]], tuple[float, float]],
    reference: float,
    tolerance: float,
    higher_is_better: bool,
) -> tuple[int, list[dict[str, Any]]]:
    """Check a descent on validation sequences it never saw: from the cheapest end of `chain` (the search's
    accepted plans, each one step cheaper than the one before) back towards its start, the first plan whose
    held-out metric (`evaluate`) is within `tolerance` of the float model's held-out `reference` is kept.

    The greedy descent accepts every step that stays within the tolerance on its own sequences, so the plan
    it ends on sits at the edge of the tolerance there, chosen among many noisy comparisons; the held-out
    sequences tell whether it is really there. Returns the kept plan's index in `chain` (0, the start, when
    no plan passes; the caller says so) and one row per plan measured."""
    rows = []
    for index in range(len(chain) - 1, -1, -1):
        mean, _ = evaluate(chain[index])
        ok = _worse(higher_is_better, mean, reference) <= tolerance
        rows.append({"chain_index": index, "steps_undone": len(chain) - 1 - index, "holdout_metric": mean,
                     "within": ok})
        if ok:
            return index, rows
    return 0, rows


def evaluator(
    model: nn.Module, val: SequenceSet, calibration: np.ndarray, constraints: PlanConstraints,
    sigma: float, seeds: Sequence[int],
) -> Callable[[dict[str, int]], tuple[float, float]]:
    """plan -> (mean, std over device seeds) of the metric on `val`; results are memoised."""
    kind = task_kind(val)
    memo: dict[tuple, tuple[float, float]] = {}

    def run(plan: dict[str, int]) -> tuple[float, float]:
        key = tuple(sorted(plan.items()))
        if key not in memo:
            values = [metric(kind, predict(planned_model(model, plan, constraints, calibration, sigma, seed), val.x),
                             val.y) for seed in seeds]
            memo[key] = (float(np.mean(values)), float(np.std(values)))
        return memo[key]

    return run


def _holdout_note(holdout: int, available: int) -> dict[str, Any]:
    """The report's `holdout` entry when the plan is not checked on held-out sequences: why not."""
    why = ("switched off (--holdout 0)" if not holdout else
           f"only {available} validation sequences outside the planning subset (at least {MIN_HOLDOUT} needed)")
    return {"sequences": 0, "skipped": why}


def qat_plan_finetune(
    model: nn.Module, plan: dict[str, int], train: SequenceSet, val: SequenceSet, base: TrainConfig, epochs: int,
    constraints: PlanConstraints,
) -> nn.Module:
    """A copy of `model` fine-tuned with the plan's weight precisions (fake quantization, STE) for
    `epochs` at a tenth of the base learning rate; activations stay float in training (the fused GRU
    kernel keeps it affordable) and take the plan's bits when the result is programmed."""
    from memgru.pipeline import plain_copy

    if epochs <= 0:
        return model
    quant = QuantConfig(weight_bits=16, act_bits=FLOAT_BITS)
    train_chip = convert(plain_copy(model, model.cfg), quant, DeviceConfig.ideal(), base.seed)
    weights = {s.name for s in slots(train_chip, constraints) if s.kind == "weight"}
    apply_plan(train_chip, {k: v for k, v in plan.items() if k in weights})
    trained, _ = train_model(train_chip, train, val, finetune_config(base, epochs))
    return plain_copy(trained, model.cfg)


def default_tolerance(higher_is_better: bool) -> float:
    """Tolerance when none is given: 1 accuracy point, or 0.1 RMSE point (SOC %)."""
    return 1.0 if higher_is_better else 0.1


def plan_task(
    task: str,
    checkpoint: Path | None = None,
    data_dir: Path | None = None,
    tolerance: float | str | None = None,
    constraints: PlanConstraints | None = None,
    sigma: float = 0.0,
    seeds: int = 1,
    limit: int | None = 512,
    qat_epochs: int = 2,
    progress: Callable[[str], None] | None = None,
    holdout: int = 512,
) -> dict[str, Any]:
    """Plan the precision of a task's model (default: its float reference `pretrained/<task>/float`).

    `tolerance` is in metric points (None: `default_tolerance`), or `MATCH_UNIFORM` ("w6a8") for
    whatever the uniform W6/A8 model loses on validation (the cheapest plan at least as good as the
    paper's choice). Sensitivity and search on (at most `limit` sequences of) the validation split at variation
    `sigma` over `seeds` device seeds; then QAT fine-tuning of the plan and of the uniform 6-bit
    baseline for `qat_epochs` each, both evaluated on the task's test sets. Returns the JSON report.

    `holdout`: at most this many of the validation sequences outside the planning subset (seeded) check the
    search's plan (`holdout_check`: the descent is undone step by step until the plan is within the tolerance
    there too; with `MATCH_UNIFORM` the tolerance there is what W6/A8 loses there). With fewer than
    `MIN_HOLDOUT` such sequences (or `holdout` 0) there is no check and the report says why.
    """
    from memgru.checkpoint import load_checkpoint
    from memgru.pipeline import load_calibration, subset, subset_indices, take
    from memgru.tasks.io import task_io
    from memgru.tasks.registry import task_spec

    if isinstance(seeds, bool) or not isinstance(seeds, int) or seeds < 1:
        raise MemgruError(f"seeds must be a positive integer, got {seeds!r}")
    if isinstance(holdout, bool) or not isinstance(holdout, int) or holdout < 0:
        raise MemgruError(f"holdout must be a whole number of sequences >= 0, got {holdout!r}")
    if not 0.0 <= sigma <= 1.0:
        raise MemgruError(f"sigma must be in [0, 1], got {sigma}")
    started = time.perf_counter()
    say = progress or (lambda _: None)
    constraints = constraints or PlanConstraints()
    io = task_io(task)
    folder = Path(checkpoint) if checkpoint else task_spec(task).pretrained_dir / "float"
    model, config = load_checkpoint(folder, task=task)
    data_dir = io.data_dir(data_dir)
    full_val = io.load_split(data_dir, "val")
    planning = subset_indices(len(full_val), limit)
    val = take(full_val, planning)
    rest = take(full_val, np.setdiff1d(np.arange(len(full_val)), planning))
    held = subset(rest, holdout) if holdout and len(rest) >= MIN_HOLDOUT else None
    calibration = load_calibration(folder)
    higher = task_kind(val) == "classification"
    device_seeds = list(range(seeds if sigma > 0 else 1))
    evaluate = evaluator(model, val, calibration, constraints, sigma, device_seeds)
    reference = metric(task_kind(val), predict(model, val.x), val.y)
    template = convert(model, BASE_QUANT, constraints.device(), 0)
    all_slots = slots(template, constraints)
    uniform = uniform_plan(all_slots, PAPER_WEIGHT_BITS, PAPER_ACT_BITS)
    uniform_val = evaluate(uniform)[0]
    tolerance_spec = tolerance
    if tolerance is None:
        tolerance = default_tolerance(higher)
    elif tolerance == MATCH_UNIFORM:
        tolerance = max(0.0, _worse(higher, uniform_val, reference))
    tolerance = float(tolerance)
    say(f"{len(all_slots)} slots; float val {reference:.3f}; uniform W6/A8 val {uniform_val:.3f}; "
        f"tolerance {tolerance:.3f}")
    found = search(evaluate, all_slots, reference, tolerance, higher, say, fallback=uniform)
    plan, held_report = found.plan, _holdout_note(holdout, len(rest))
    if held is not None:
        check = evaluator(model, held, calibration, constraints, sigma, device_seeds)
        held_reference = metric(task_kind(held), predict(model, held.x), held.y)
        held_uniform = check(uniform)[0]
        held_tolerance = (max(0.0, _worse(higher, held_uniform, held_reference)) if tolerance_spec == MATCH_UNIFORM
                          else tolerance)
        kept, checks = holdout_check(found.chain, check, held_reference, held_tolerance, higher)
        plan = found.chain[kept]
        held_report = {"sequences": len(held), "float": held_reference, "uniform_w6a8": held_uniform,
                       "tolerance": held_tolerance, "checks": checks, "steps_undone": len(found.chain) - 1 - kept,
                       "within_tolerance": bool(checks[-1]["within"]), "plan_before": found.plan}
        say(f"held-out check on {len(held)} sequences: float {held_reference:.3f}, W6/A8 {held_uniform:.3f}; "
            f"{held_report['steps_undone']} descent steps undone")

    train = io.load_split(data_dir, "train")
    base = TrainConfig.from_dict(config["extra"]["train"])
    sets = io.evaluation_sets(data_dir)

    def test(m: nn.Module, plan: dict[str, int] | None) -> dict[str, float]:
        out = {}
        for group, data in sets:
            chip = m.eval() if plan is None else planned_model(m, plan, constraints, calibration, 0.0, 0)
            label = ",".join(f"{k}={v}" for k, v in group.items()) or "test"
            out[label] = metric(task_kind(data), predict(chip, data.x), data.y)
        return out

    results: dict[str, Any] = {"float": {"val": reference, "test": test(model, None)}}
    for name, chosen in (("plan", plan), ("uniform_w6a8", uniform)):
        results[f"{name}_ptq"] = {"val": evaluate(chosen)[0], "test": test(model, chosen)}
        say(f"{name} PTQ: {results[f'{name}_ptq']}")
        tuned = qat_plan_finetune(model, chosen, train, full_val, base, qat_epochs, constraints)
        results[f"{name}_qat"] = {
            "val": evaluator(tuned, val, calibration, constraints, sigma, device_seeds)(chosen)[0],
            "test": test(tuned, chosen)}
        say(f"{name} QAT: {results[f'{name}_qat']}")
    say(f"planned and fine-tuned in {time.perf_counter() - started:.0f} s")
    cost_plan = plan_cost(model, plan, constraints)
    cost_uniform = plan_cost(model, uniform, constraints)
    saving = lambda key: round(100.0 * (1 - cost_plan[key] / cost_uniform[key]), 2)  # noqa: E731
    return {
        "task": task,
        "checkpoint": str(folder),
        "checkpoint_sha256": config["sha256"],
        "metric": task_spec(task).metric,
        "higher_is_better": higher,
        "tolerance": tolerance,
        "sigma": sigma,
        "device_seeds": device_seeds,
        "val_sequences": len(val),
        "constraints": asdict(constraints),
        "slots": [{**asdict(s), "floor": found.floors[s.name]} for s in all_slots],
        "sensitivity": found.sensitivity,
        "search_steps": found.steps,
        "plan": plan,
        "plan_within_tolerance": found.within_tolerance,
        "holdout": held_report,
        "plan_started_from": {"fallback": "uniform_w6a8", "fallback_cheaper": "uniform_w6a8_cheaper"}.get(
            found.started_from, "top"),
        "uniform_w6a8": uniform,
        "uniform_w6a8_val": uniform_val,
        "cost": {"plan": cost_plan, "uniform_w6a8": cost_uniform,
                 "saving_pct": {k: saving(k) for k in ("total_weight_bits", "devices", "adc_conversions_per_step",
                                                       "activation_bits_per_step")}},
        "results": results,
        "qat_epochs": qat_epochs,
    }


def _bits_label(bits: int) -> str:
    return "float" if bits >= FLOAT_BITS else str(bits)


def report_lines(report: dict[str, Any]) -> list[str]:
    """A plan report (from `plan_task`) as readable lines: the plan, its cost and its metrics."""
    unit = "accuracy %" if report["higher_is_better"] else "RMSE %"
    lines = [f"{report['task']}: fusion quantization plan (tolerance {report['tolerance']} {unit} points vs float on "
             f"{report['val_sequences']} validation sequences, sigma {report['sigma']})"]
    width = max(len(name) for name in report["plan"])
    for name, bits in report["plan"].items():
        uniform = _bits_label(report["uniform_w6a8"][name])
        lines.append(f"  {name:<{width}}  {_bits_label(bits):>5}  (uniform {uniform})")
    cost = report["cost"]
    for key in ("total_weight_bits", "devices", "adc_conversions_per_step", "activation_bits_per_step"):
        lines.append(f"  {key}: plan {cost['plan'][key]}, uniform W6/A8 {cost['uniform_w6a8'][key]} "
                     f"({cost['saving_pct'][key]:+.1f} % saved)")
    for name, result in report["results"].items():
        tests = ", ".join(f"{k} {v:.2f}" for k, v in result["test"].items())
        lines.append(f"  {name}: val {result['val']:.2f}; test {tests}")
    lines += _holdout_lines(report.get("holdout"))
    if not report["plan_within_tolerance"]:
        lines.append("  note: neither the highest precision the constraints allow nor uniform W6/A8 is within "
                     "the tolerance")
    elif report.get("plan_started_from") == "uniform_w6a8":
        lines.append("  note: the highest precision the constraints allow missed the tolerance on validation; "
                     "the search descended from uniform W6/A8")
    elif report.get("plan_started_from") == "uniform_w6a8_cheaper":
        lines.append("  note: the descent from the highest precision ended costlier than uniform W6/A8; the "
                     "descent from uniform W6/A8 gave this cheaper plan")
    return lines


def holdout_sentence(held: dict[str, Any] | None) -> str:
    """What the held-out check of a plan report did, as one sentence ('' for reports made before it existed)."""
    if not held:
        return ""
    if not held.get("sequences"):
        return f"No held-out check: {held.get('skipped', 'none made')}."
    undone = held["steps_undone"]
    result = ("the search's plan met the tolerance there too" if undone == 0 and held["within_tolerance"] else
              f"{undone} of the descent's steps were undone to meet the tolerance there" if held["within_tolerance"]
              else f"no plan of the descent met the tolerance there; the descent's start is kept ({undone} steps "
                   "undone)")
    return (f"Held-out check on {held['sequences']} other validation sequences (float {held['float']:.2f}, "
            f"W6/A8 {held['uniform_w6a8']:.2f}, tolerance {held['tolerance']:.2f}): {result}.")


def _holdout_lines(held: dict[str, Any] | None) -> list[str]:
    sentence = holdout_sentence(held)
    return [f"  note: {sentence}"] if sentence else []


REPORT_KEYS = ("task", "plan", "uniform_w6a8", "slots", "cost", "results", "tolerance", "higher_is_better")
"""Fields a plan report must have to be shown (see `plan_task`)."""


def load_report(path: str | Path) -> dict[str, Any]:
    """A plan report written by `python -m memgru plan` (JSON, validated for the fields shown)."""
    import json

    path = Path(path)
    try:
        report = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise MemgruError(f"cannot read the plan report {path.name}: {exc}") from None
    missing = [k for k in REPORT_KEYS if not isinstance(report, dict) or k not in report]
    if missing:
        raise MemgruError(f"{path.name} is not a plan report (missing {', '.join(missing)})")
    return report


def plan_tables(report: dict[str, Any]) -> dict[str, Any]:
    """The report as tables (pandas DataFrames): `bits` (slot, kind, plan, uniform W6/A8, floor, ladder),
    `cost` (plan vs uniform per cost item, % saved) and `metrics` (val and each test set per model)."""
    import pandas as pd

    bits = pd.DataFrame([{
        "slot": s["name"], "kind": s["kind"], "plan_bits": report["plan"][s["name"]],
        "uniform_bits": report["uniform_w6a8"][s["name"]], "floor_bits": s.get("floor"),
        "ladder": " ".join(_bits_label(b) for b in s["ladder"]), "size": s["size"],
    } for s in report["slots"]])
    cost = pd.DataFrame([{
        "item": key, "plan": report["cost"]["plan"][key], "uniform_w6a8": report["cost"]["uniform_w6a8"][key],
        "saved_pct": report["cost"].get("saving_pct", {}).get(key),
    } for key in report["cost"]["plan"]])
    for column in ("plan", "uniform_w6a8"):  # counts stay integers (pandas would make the column float)
        cost[column] = pd.Series([int(v) if float(v).is_integer() else v for v in cost[column]], dtype=object)
    metrics = pd.DataFrame([{"model": name, "val": result["val"], **result["test"]}
                            for name, result in report["results"].items()])
    return {"bits": bits, "cost": cost, "metrics": metrics}
