"""The paper's tables and figures as reproducible experiments writing `results/<task>_<name>.csv`.

- `bits`: metric vs weight bits (2…16 and float), post-training quantization (PTQ: the float-trained
  model quantized as is) next to quantization-aware training (QAT: the float model fine-tuned at that
  precision for a few epochs). Paper Tables 1, 4, 5.
- `sigma`: metric vs programming variation σ (fraction of g_max − g_min) for the float-trained and
  the noise-trained model, at 6-bit weights / 8-bit activations, over several device seeds. Fig. 7.
- `snr`: metric vs input SNR, float and 6-bit: white noise added to the raw signal where the task
  can rebuild it (audio: the clip's waveform, then featurised), else to the model inputs. Table 3.
- `families` (trajectory): accuracy per false-track family and magnitude bin, and the false-alarm
  rate on real tracks, for the float- and noise-trained models at float and 6-bit weights.
- `unusual` (trajectory): the false-alarm rate on real flights of unusual shape (gliders, survey
  grids, calibration orbits, holdings ...: the `unusual` split, never trained on), per category and
  flight, same four models.

Every row names the task, the evaluation set (group columns such as `temperature_c`), the setting
and the seed. `python -m memgru experiment --task T --name N` runs one.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from pathlib import Path

import pandas as pd
from torch import nn

from memgru.checkpoint import load_checkpoint
from memgru.config import FLOAT_BITS, TrainConfig
from memgru.errors import MemgruError
from memgru.pipeline import deployed_model, evaluate_sets, load_calibration, plain_copy, subset
from memgru.tasks.common import SequenceSet
from memgru.tasks.io import task_io
from memgru.tasks.registry import task_spec
from memgru.train import finetune_config, predict, train_model

PAPER_BITS = (2, 3, 4, 5, 6, 7, 8, 16, FLOAT_BITS)
"""Weight precisions of the paper's tables."""
PAPER_SIGMAS = (0.0, 0.02, 0.05, 0.08, 0.1, 0.15, 0.2)
"""Programming variation levels of Fig. 7."""
PAPER_SNRS = (-10.0, -5.0, 0.0, 5.0, 10.0)
"""Input SNRs of Table 3 (dB)."""
EXPERIMENTS = ("bits", "sigma", "snr", "families", "unusual")
"""Experiment names."""


def family_rows(model: nn.Module, data: SequenceSet) -> pd.DataFrame:
    """Accuracy per `family` (and magnitude bin) of a classifier; for the real family this is
    100 % minus the false-alarm rate. Needs `family` and `magnitude` columns in `data.meta`."""
    pred = predict(model, data.x).argmax(dim=-1).numpy()
    meta = data.meta.assign(correct=(pred == data.y) * 100.0)
    meta["magnitude_bin"] = pd.cut(meta["magnitude"], [-0.01, 0.1, 0.2, 0.4, 0.7, 1.0]).astype(str)
    meta.loc[meta["family"] == "real", "magnitude_bin"] = "real"
    per_family = meta.groupby("family")["correct"].agg(["mean", "size"]).reset_index().assign(magnitude_bin="all")
    per_bin = meta.groupby(["family", "magnitude_bin"])["correct"].agg(["mean", "size"]).reset_index()
    per_bin = per_bin[per_bin["family"] != "real"]
    return pd.concat([per_family, per_bin], ignore_index=True).rename(columns={"mean": "accuracy", "size": "n"})


def false_alarm_rows(model: nn.Module, data: SequenceSet) -> pd.DataFrame:
    """False-alarm rate (%) of a real-vs-false classifier on all-real `data`, per `category` and per
    `flight` of its meta (rows: level = category or flight, name, windows n, false_alarm_pct)."""
    flagged = (predict(model, data.x).argmax(dim=-1).numpy() == 1) * 100.0
    meta = data.meta.assign(flagged=flagged)
    rows = [meta.groupby(level)["flagged"].agg(["mean", "size"]).reset_index().rename(columns={level: "name"})
            .assign(level=level) for level in ("category", "flight")]
    total = pd.DataFrame({"name": ["all"], "mean": [float(flagged.mean())], "size": [len(flagged)], "level": ["all"]})
    return pd.concat([total, *rows], ignore_index=True).rename(columns={"mean": "false_alarm_pct", "size": "n"})


def qat_finetune(
    model: nn.Module, train: SequenceSet, val: SequenceSet, base: TrainConfig, weight_bits: int, epochs: int
) -> nn.Module:
    """Fine-tune a copy of `model` with QAT at `weight_bits` for `epochs` at a tenth of the base lr.

    Weights are fake-quantized in training (STE); activations stay float during fine-tuning (the fused
    GRU kernel keeps it affordable on a CPU) and are quantized at `act_bits` only when evaluated.
    """
    trained, _ = train_model(plain_copy(model, model.cfg), train, val, finetune_config(base, epochs, weight_bits))
    return trained


def _four_chips(task: str, folder: Path, float_model: nn.Module, act_bits: int
                ) -> list[tuple[dict[str, object], nn.Module]]:
    """The float- and noise-trained models of a task folder at float and at 6-bit weights (ideal device,
    calibrated on the float model's calibration set): [({training, weight_bits, act_bits}, model)]."""
    noise_model, _ = load_checkpoint(folder, task=task)
    chips = []
    for training, model in (("float", float_model), ("noise", noise_model)):
        for bits in (FLOAT_BITS, 6):
            act = FLOAT_BITS if bits >= FLOAT_BITS else act_bits
            chips.append(({"training": training, "weight_bits": bits, "act_bits": act},
                          deployed_model(model, folder / "float", bits, act, 0.0, 0)))
    return chips


def run_experiment(
    task: str,
    name: str,
    folder: Path,
    data_dir: Path | None = None,
    bits: Sequence[int] = PAPER_BITS,
    sigmas: Sequence[float] = PAPER_SIGMAS,
    snrs: Sequence[float] = PAPER_SNRS,
    seeds: int = 5,
    act_bits: int = 8,
    qat_epochs: int = 2,
    progress: Callable[[str], None] | None = None,
    limit: int | None = None,
    gate_bits: int | None = None,
) -> pd.DataFrame:
    """Run experiment `name` on the task folder `folder` (deployed model + `float/`); returns the rows.

    `limit` evaluates a seeded random subset of at most that many sequences per evaluation set
    (the rows' `n` column says how many were used). `gate_bits` gives the gate outputs their own
    precision (bits, sigma and snr experiments; see `QuantConfig.gate_bits`).
    """
    if gate_bits is not None and name in ("families", "unusual"):
        raise MemgruError(f"--gate-bits applies to the bits, sigma and snr experiments, not {name}")
    acts = {"act_bits": act_bits, "act_percentile": task_spec(task).act_percentile,
            **({} if gate_bits is None else {"gate_bits": gate_bits})}
    io = task_io(task)
    data_dir = io.data_dir(data_dir)
    sets = [(group, subset(data, limit)) for group, data in io.evaluation_sets(data_dir)]
    say = progress or (lambda _: None)
    float_model, float_cfg = load_checkpoint(folder / "float", task=task)
    calibration = load_calibration(folder / "float")
    start = time.perf_counter()
    if name == "bits":
        ptq = evaluate_sets(float_model, sets, calibration, bits=bits, **acts).assign(method="ptq")
        say(f"PTQ done in {time.perf_counter() - start:.0f} s")
        train, val = io.load_split(data_dir, "train"), io.load_split(data_dir, "val")
        base = TrainConfig.from_dict(float_cfg["extra"]["train"])
        qat = []
        for b in (b for b in bits if b < FLOAT_BITS):
            tuned = plain_copy(qat_finetune(float_model, train, val, base, b, qat_epochs), float_model.cfg)
            qat.append(evaluate_sets(tuned, sets, calibration, bits=[b], **acts).assign(method="qat",
                                                                                      qat_epochs=qat_epochs))
            say(f"QAT {b}-bit done at {time.perf_counter() - start:.0f} s")
        rows = pd.concat([ptq, *qat], ignore_index=True)
    elif name == "sigma":
        noise_model, _ = load_checkpoint(folder, task=task)
        tables = []
        for training, model in (("float", float_model), ("noise", noise_model)):
            tables.append(evaluate_sets(model, sets, calibration, bits=[6], **acts, sigmas=sigmas,
                                    seeds=range(seeds)).assign(training=training))
            say(f"sigma sweep of the {training}-trained model done at {time.perf_counter() - start:.0f} s")
        rows = pd.concat(tables, ignore_index=True)
    elif name == "snr":
        perturb, noise_on = io.input_noise(data_dir)
        rows = evaluate_sets(float_model, sets, calibration, bits=[6, FLOAT_BITS], **acts,
                             snrs=[None, *snrs], perturb=perturb).assign(noise_on=noise_on)
    elif name == "families":
        rows = pd.concat([family_rows(chip, data).assign(**setting)
                          for setting, chip in _four_chips(task, folder, float_model, act_bits) for _, data in sets],
                         ignore_index=True)
    elif name == "unusual":
        unusual = io.load_split(data_dir, "unusual")
        rows = pd.concat([false_alarm_rows(chip, unusual).assign(**setting)
                          for setting, chip in _four_chips(task, folder, float_model, act_bits)], ignore_index=True)
    else:
        raise ValueError(f"unknown experiment {name!r}")
    rows = rows.assign(task=task)
    return rows if limit is None else rows.assign(limit=limit)  # so the table's command can be given in full
