"""Command line: `python -m memgru <command>`.

Every command accepts `--json` (one JSON document on stdout). Bad input exits with code 2 and one
line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

import numpy as np
import pandas as pd

from memgru.config import FLOAT_BITS, NOISE_SCALES, DeviceConfig, QuantConfig
from memgru.errors import MemgruError
from memgru.tasks.registry import TASK_NAMES, load_task_model, task_spec

EXIT_BAD_INPUT = 2
EXPERIMENT_NAMES = ("bits", "sigma", "snr", "families", "unusual", "operating", "incident", "tracks", "detection")
"""`experiment --name` choices (memgru.experiments.EXPERIMENTS, without importing torch here)."""
SEED_MAX = 2**32 - 1
"""Largest device / data seed accepted (numpy and torch generators take any seed in 0..SEED_MAX)."""
DATASETS = {"audio-demo": "audio", "trajectory": "trajectory", "soc": "soc"}
"""`data` names -> task."""


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"{self.prog}: error: {message}\n")
        raise SystemExit(EXIT_BAD_INPUT)


def _bits(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bits must be an integer, got {text!r}") from exc
    if value != FLOAT_BITS and not 2 <= value <= 16:
        raise argparse.ArgumentTypeError(f"bits must be 2..16 or 32 (float), got {value}")
    return value


def _seed(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"seed must be an integer, got {text!r}") from exc
    if not 0 <= value <= SEED_MAX:
        raise argparse.ArgumentTypeError(f"seed must be in 0..{SEED_MAX}, got {value}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from exc
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"sigma must be in [0, 1] (fraction of g_max - g_min), got {value}")
    return value


def _add_gate_bits(p: argparse.ArgumentParser, scope: str = "") -> None:
    p.add_argument("--gate-bits", type=_bits, default=None,
                   help=f"bits of the gate outputs r, z, n (the sigmoid/tanh table's word){scope}; default: --act-bits")


def _add_hardware_args(p: argparse.ArgumentParser, weight_bits: int = FLOAT_BITS) -> None:
    p.add_argument("--weight-bits", type=_bits, default=weight_bits, help="weight bits 2..16, 32 = float")
    p.add_argument("--act-bits", type=_bits, default=FLOAT_BITS, help="activation bits 2..16, 32 = float")
    p.add_argument("--preset", choices=("ideal", "rram_1t1r"), default="ideal",
                   help="device preset: ideal (only quantization and --sigma act) or rram_1t1r (all non-idealities)")
    p.add_argument("--sigma", type=_fraction, default=None,
                   help="programming variation, std as a fraction of g_max - g_min (overrides the preset)")
    p.add_argument("--adc-bits", type=_bits, default=None, help="ADC bits (overrides the preset)")
    p.add_argument("--seed", type=_seed, default=0, help="device seed (programming variation, faults, read noise)")


def device_from_args(args: argparse.Namespace) -> DeviceConfig:
    """The DeviceConfig of --preset with --sigma / --adc-bits applied."""
    changes: dict[str, Any] = {}
    if args.sigma is not None:
        changes["prog_sigma"] = args.sigma
    if args.adc_bits is not None:
        changes["adc_bits"] = args.adc_bits
    return DeviceConfig.preset(args.preset, **changes)


def hardware_from_args(args: argparse.Namespace) -> tuple[QuantConfig, DeviceConfig]:
    """QuantConfig and DeviceConfig described by the shared hardware options."""
    return QuantConfig(weight_bits=args.weight_bits, act_bits=args.act_bits), device_from_args(args)


def cmd_crossbar(args: argparse.Namespace) -> dict[str, Any]:
    """Program the task model onto crossbars and summarise (and optionally export) the conductances."""
    from memgru.export import export_crossbar
    from memgru.layers import convert, crossbar_layers

    quant, device = hardware_from_args(args)
    model, origin = load_task_model(args.task, args.config, args.seed)
    mem = convert(model, quant, device, seed=args.seed)
    matrices = {
        f"{lname}.{mname}": pm
        for lname, layer in crossbar_layers(mem).items()
        for mname, pm in layer.programmed().items()
    }
    result = {
        "task": args.task, "weights": origin, "quant": quant.to_dict(), "device": device.to_dict(), "seed": args.seed,
        "matrices": {name: pm.summary() for name, pm in matrices.items()},
    }
    keys = ("arrays", "devices", "adc_conversions_per_mvm")
    result["totals"] = {k: sum(m[k] for m in result["matrices"].values()) for k in keys}
    if args.export:
        result["export"] = export_crossbar(Path(args.export), matrices, result)
    return result


def _print_crossbar(result: dict[str, Any]) -> None:
    print(f"{result['task']}: {result['weights']}")
    print(f"{'matrix':<22}{'out x rows':>12}{'slices':>7}{'arrays':>7}{'devices':>10}{'stuck':>7}{'W err rms':>11}")
    for name, m in result["matrices"].items():
        print(f"{name:<22}{m['out_features']:>6} x{m['rows']:>4}{m['slices']:>7}{m['arrays']:>7}{m['devices']:>10}"
              f"{m['stuck_hrs'] + m['stuck_lrs']:>7}{m['weight_error_rms']:>11.2e}")
    t = result["totals"]
    print(f"total: {t['arrays']} arrays, {t['devices']} devices, "
          f"{t['adc_conversions_per_mvm']} ADC conversions per step")
    if "export" in result:
        print(f"exported to {result['export']['folder']}")


def cmd_bench(args: argparse.Namespace) -> dict[str, Any]:
    """Time float nn.GRU against the crossbar GRU on the same input."""
    from memgru.bench import run_bench

    return run_bench(repeats=args.repeats, quick=args.quick)


def _print_bench(result: dict[str, Any]) -> None:
    print(f"input {result['input']}, {result['threads']} threads, median of {result['repeats']}")
    for row in result["runs"]:
        print(f"{row['name']:<40}{row['ms']:>10.1f} ms{row['ratio']:>8.2f}x")


def _float_list(text: str) -> list[float]:
    try:
        return [float(v) for v in text.split(",") if v.strip()]
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected comma-separated numbers, got {text!r}") from exc


def _bits_list(text: str) -> list[int]:
    values = [_bits(v) for v in text.split(",") if v.strip()]
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated bits such as 4,6,8, got {text!r}")
    return values


def _percentile(text: str) -> float:
    values = _percentile_list(text)
    if len(values) != 1:
        raise argparse.ArgumentTypeError(f"expected one percentile in (50, 100], got {text!r}")
    return values[0]


def _percentile_list(text: str) -> list[float]:
    values = _float_list(text)
    if not values or not all(50.0 < v <= 100.0 for v in values):
        raise argparse.ArgumentTypeError(f"expected comma-separated percentiles in (50, 100] such as 99.99,99.9, "
                                         f"got {text!r}")
    return values


def _sigma_list(text: str) -> list[float]:
    values = [_fraction(str(v)) for v in _float_list(text)]
    if not values:
        raise argparse.ArgumentTypeError(f"expected comma-separated sigmas such as 0,0.05, got {text!r}")
    return values


def cmd_data(args: argparse.Namespace) -> dict[str, Any]:
    """Build a dataset deterministically into data/<task> (or --out)."""
    from memgru.export import output_folder
    from memgru.tasks.io import task_io

    io = task_io(DATASETS[args.dataset])
    out = output_folder(io.data_dir(args.out))
    return {"dataset": args.dataset, "folder": str(out), **io.build(out, seed=args.seed)}


def cmd_train(args: argparse.Namespace) -> dict[str, Any]:
    """Train the float and noise-trained models of a task into a task folder."""
    from memgru.config import ExperimentConfig, TrainConfig
    from memgru.export import output_folder
    from memgru.pipeline import train_task
    from memgru.tasks.registry import DEFAULT_TRAIN, read_experiment_config

    exp = read_experiment_config(args.config) if args.config else ExperimentConfig(
        task=args.task, model=task_spec(args.task).model, train=DEFAULT_TRAIN[args.task])
    if exp.task != args.task:
        raise MemgruError(f"config {args.config} is for task {exp.task!r}, not {args.task!r}")
    overrides = (("epochs", args.epochs), ("weight_noise", args.weight_noise), ("lr", args.lr),
                 ("noise_scale", args.noise_scale), ("tbptt_steps", args.tbptt_steps))
    changes = {k: v for k, v in overrides if v is not None}
    if changes:
        exp = ExperimentConfig(exp.task, exp.model, TrainConfig.from_dict({**exp.train.to_dict(), **changes}))
    out = output_folder(Path(args.out) if args.out else task_spec(args.task).pretrained_dir)
    progress = None if args.json else print
    init = Path(args.init_from) if args.init_from else None
    return train_task(args.task, exp, out, args.data_dir, tuple(args.runs.split(",")), progress, init)


def cmd_predict(args: argparse.Namespace) -> dict[str, Any]:
    """Classify a file (audio, trajectory) or estimate its SOC trace at a hardware setting."""
    from memgru.pipeline import predict_file

    if args.snr_db is not None and not -60 <= args.snr_db <= 100:
        raise MemgruError(f"--snr-db must be between -60 and 100 dB, got {args.snr_db}")
    chosen = None if args.preset == "ideal" and args.adc_bits is None else device_from_args(args)
    return predict_file(args.task, args.path, args.checkpoint, args.weight_bits, args.act_bits, args.sigma or 0.0,
                        args.snr_db, args.seed, chosen, args.gate_bits, args.threshold, args.allow_missing)


def _print_false_windows(result: dict[str, Any]) -> None:
    """For a real-vs-false verdict over several windows: how many windows pass the threshold, where the most
    suspicious one starts and the longest run of them (`pipeline.flagged_windows`), so a long track's verdict can
    be traced."""
    from memgru.pipeline import flagged_windows, window_scores

    if "false" not in result["probabilities"] or len(result.get("window_probabilities") or []) < 2:
        return
    starts = result.get("input", {}).get("window_start_s") or []
    for line in flagged_windows(window_scores(result, "false"), starts, result.get("threshold") or 0.5):
        print(f"  {line}")


def _print_predict(result: dict[str, Any]) -> None:
    gate = f"/G{result['gate_bits']}" if result.get("gate_bits") else ""
    setting = f"W{result['weight_bits']}/A{result['act_bits']}{gate}, sigma {result['sigma']}, seed {result['seed']}"
    if "label" in result:
        top = sorted(result["probabilities"].items(), key=lambda kv: -kv[1])[:3]
        rule = f"; threshold {result['threshold']:g}" if result.get("threshold") is not None else ""
        print(f"{result['file']}: {result['label']} ({setting}; {result['windows']} windows{rule})")
        for label, p in top:
            print(f"  {label:<20}{p:6.3f}")
        _print_false_windows(result)
        missing = result.get("input", {}).get("missing_cells")
        if missing:
            print("  empty cells interpolated: " + ", ".join(f"{col} {n}" for col, n in missing.items()))
    else:
        rmse = "no truth in the file" if result["rmse"] is None else f"RMSE {result['rmse']:.2f} %"
        print(f"{result['file']}: SOC {result['soc'][0]:.1f} % -> {result['soc'][-1]:.1f} % over "
              f"{len(result['soc'])} s; {rmse} ({setting})")


def _checkpoint_folder(args: argparse.Namespace) -> Path:
    """The checkpoint or task folder a command reads: `--checkpoint`, else the task's pretrained folder."""
    return Path(args.checkpoint) if args.checkpoint else task_spec(args.task).pretrained_dir


def _prepare_csv_out(out: str | None) -> None:
    """Refuse an `--out` that is a folder and create the folder a CSV `--out` goes into (nothing when unset)."""
    from memgru.export import output_folder

    if not out:
        return
    if Path(out).is_dir():
        raise MemgruError(f"--out {out} is a folder; give a CSV file name")
    output_folder(Path(out).resolve().parent)


def cmd_evaluate(args: argparse.Namespace) -> dict[str, Any]:
    """Metric vs weight bits / sigma / input SNR on a split of the task's data."""
    from memgru.checkpoint import load_checkpoint
    from memgru.pipeline import evaluate_sets, load_calibration, task_act_percentile
    from memgru.tasks.io import task_io

    _prepare_csv_out(args.out)
    folder = _checkpoint_folder(args)
    model, _ = load_checkpoint(folder, task=args.task)
    percentiles = args.act_percentile or [task_act_percentile(folder)]
    io = task_io(args.task)
    data_dir = io.data_dir(args.data_dir)
    sets = io.evaluation_sets(data_dir) if args.split == "test" else [({}, io.load_split(data_dir, args.split))]
    device = device_from_args(args)
    snrs = [None] if not args.snr_db else [None, *args.snr_db]
    perturb, noise_on = io.input_noise(data_dir)
    calibration, tables = load_calibration(folder), []
    for percentile in percentiles:
        rows = evaluate_sets(model, sets, calibration, bits=args.bits, sigmas=args.sigma_list, snrs=snrs,
                             seeds=range(args.seed, args.seed + args.seeds), act_bits=args.act_bits, device=device,
                             act_percentile=percentile, gate_bits=args.gate_bits, perturb=perturb)
        # a sweep over calibrations names each row's (min/max included); one calibration keeps the usual columns
        tables.append(rows.assign(act_percentile=percentile) if len(percentiles) > 1 else rows)
    rows = pd.concat(tables, ignore_index=True)
    if args.snr_db:
        rows = rows.assign(noise_on=noise_on)
    rows = rows.drop(columns="seconds")  # wall time: the same command must give the same output
    if args.out:
        rows.to_csv(args.out, index=False)
    return {"task": args.task, "split": args.split, "checkpoint": str(folder), "device": device.to_dict(),
            "rows": rows.replace({np.nan: None}).to_dict(orient="records")}


def _print_evaluate(result: dict[str, Any]) -> None:
    print(f"{result['task']} on the {result['split']} split ({result['checkpoint']})")
    print(pd.DataFrame(result["rows"]).to_string(index=False))


def cmd_experiment(args: argparse.Namespace) -> dict[str, Any]:
    """Run one of the paper's experiments on a task folder and write results/<task>_<name>.csv."""
    from memgru.experiments import run_experiment
    from memgru.export import output_folder
    from memgru.tasks.registry import results_root

    out = Path(args.out) if args.out else results_root() / f"{args.task}_{args.name}.csv"
    output_folder(out.resolve().parent)
    folder = _checkpoint_folder(args)
    kwargs: dict[str, Any] = {"seeds": args.seeds, "qat_epochs": args.qat_epochs, "limit": args.limit,
                              "act_bits": args.act_bits, "gate_bits": args.gate_bits,
                              "act_percentile": args.act_percentile}
    for key in ("bits", "sigmas", "snrs"):
        if getattr(args, key) is not None:
            kwargs[key] = getattr(args, key)
    rows = run_experiment(args.task, args.name, folder, args.data_dir, progress=None if args.json else print,
                          **kwargs)
    rows.to_csv(out, index=False)
    return {"task": args.task, "experiment": args.name, "csv": str(out),
            "rows": rows.replace({np.nan: None}).to_dict(orient="records")}


def cmd_calibrate(args: argparse.Namespace) -> dict[str, Any]:
    """Choose a checkpoint's activation calibration on validation and store it in its config."""
    from memgru.experiments import calibrate_checkpoint

    _prepare_csv_out(args.out)
    folder = _checkpoint_folder(args)
    sweep = {key: getattr(args, key) for key in ("bits", "percentiles") if getattr(args, key) is not None}
    chosen, table, rows = calibrate_checkpoint(args.task, folder, args.data_dir, act_bits=args.act_bits,
                                               store=not args.dry_run, **sweep)
    if args.out:
        rows.to_csv(args.out, index=False)
    return {"task": args.task, "checkpoint": str(folder), "act_percentile": chosen, "stored": not args.dry_run,
            "table": table.to_dict(orient="records"), "csv": args.out}


def _print_calibrate(result: dict[str, Any]) -> None:
    print(f"{result['checkpoint']}: mean validation accuracy (%) over the quantized weight bits, per calibration")
    print(pd.DataFrame(result["table"]).round({"mean": 2, "paired_gain": 2, "z": 2}).to_string(index=False))
    where = "stored in its config.json" if result["stored"] else "not stored (--dry-run)"
    print(f"chosen: {result['act_percentile']:g} ({where})" + (f"; rows in {result['csv']}" if result["csv"] else ""))


def cmd_card(args: argparse.Namespace) -> dict[str, Any]:
    """Regenerate a task's model card."""
    from memgru.modelcard import write_model_card

    return {"task": args.task, "path": str(write_model_card(args.task))}


def _integer(text: str, minimum: int, expected: str) -> int:
    """`text` as an integer of at least `minimum`; otherwise an argparse error saying `expected`."""
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {text!r}") from exc
    if value < minimum:
        raise argparse.ArgumentTypeError(f"expected {expected}, got {value}")
    return value


def _positive_int(text: str) -> int:
    return _integer(text, 1, "a positive integer")


def _count(text: str) -> int:
    return _integer(text, 0, "a whole number >= 0")


def _tolerance(text: str) -> float | str:
    if text == "w6a8":
        return text
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"tolerance must be a number of metric points, got {text!r}") from exc
    if not 0.0 <= value < 100.0:
        raise argparse.ArgumentTypeError(f"tolerance must be in [0, 100) metric points, got {value}")
    return value


def cmd_plan(args: argparse.Namespace) -> dict[str, Any]:
    """Fusion quantization: per-matrix / per-activation precision under device constraints."""
    from memgru.export import output_folder
    from memgru.fusion import PlanConstraints, plan_task
    from memgru.pipeline import task_act_percentile
    from memgru.tasks.registry import results_root

    out = Path(args.out) if args.out else results_root() / f"plan_{args.task}.json"
    if out.is_dir():
        raise MemgruError(f"--out {out} is a folder; give a .json file path")
    output_folder(out.resolve().parent)
    folder = Path(args.checkpoint) if args.checkpoint else task_spec(args.task).pretrained_dir / "float"
    constraints = PlanConstraints(
        max_states=args.max_states, max_slices=args.max_slices, dac_bits=args.dac_bits, adc_bits=args.adc_bits,
        activation_circuit=args.circuit, lut_bits=args.lut_bits, act_percentile=task_act_percentile(folder),
        act_bits=args.act_bits,
    )
    report = plan_task(args.task, folder, args.data_dir, args.tolerance, constraints, args.sigma,
                       args.seeds, args.limit, args.qat_epochs, progress=None if args.json else print,
                       holdout=args.holdout)
    report["command"] = _plan_command(args)
    out.write_text(json.dumps(report, indent=2, sort_keys=True) + "\n")
    return {**report, "json": str(out)}


def _plan_command(args: argparse.Namespace) -> str:
    """The `plan` command line that reproduces a report: the task, every option not at its parser default
    (`--seeds` only with σ > 0), `--out` when given."""
    defaults = vars(_parser().parse_args(["plan", "--task", args.task]))
    parts = ["python -m memgru plan", f"--task {args.task}"]
    for name, default in defaults.items():
        if name in ("task", "out", "json", "run", "show", "command"):
            continue
        value = getattr(args, name)
        if value != default and not (name == "seeds" and args.sigma == 0):
            parts.append(f"--{name.replace('_', '-')} {value}")
    return " ".join([*parts, *([f"--out {args.out}"] if args.out else [])])


def _print_plan(result: dict[str, Any]) -> None:
    from memgru.fusion import report_lines

    print("\n".join(report_lines(result)))
    print(f"wrote {result['json']}")


def _parser() -> _Parser:
    parser = _Parser(prog="memgru", description="GRU networks on memristor (RRAM) crossbars.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("crossbar", help="program a task model onto crossbars: conductance maps and summary")
    p.add_argument("--task", choices=TASK_NAMES, required=True, help="which task model")
    p.add_argument("--config", help="model config JSON (ModelConfig or experiment config) instead of the checkpoint")
    _add_hardware_args(p, weight_bits=6)
    p.add_argument("--export", metavar="DIR", help="write conductances (NPZ + CSV) and summary.json into DIR")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(run=cmd_crossbar, show=_print_crossbar)

    p = sub.add_parser("data", help="build a dataset deterministically (audio-demo, trajectory, soc)")
    p.add_argument("dataset", choices=sorted(DATASETS), help="which dataset to build")
    p.add_argument("--out", help="output folder (default data/<task>)")
    p.add_argument("--seed", type=_seed, default=0, help="seed of the dataset build (sampling, augmentation, noise)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(run=cmd_data, show=lambda r: print(json.dumps(r, indent=2, default=str)))

    p = sub.add_parser("train", help="train a task's float and noise-trained models (writes a task folder)")
    p.add_argument("--task", choices=TASK_NAMES, required=True, help="which task model")
    p.add_argument("--config", help="experiment config JSON (task, model, train); default: the task's")
    p.add_argument("--out", help="task folder to write (default pretrained/<task>)")
    p.add_argument("--data-dir", help="built dataset folder (default data/<task>)")
    p.add_argument("--runs", default="float,noise", help="which runs: float, noise or both (comma-separated)")
    p.add_argument("--epochs", type=int, default=None, help="override the config's epochs")
    p.add_argument("--weight-noise", type=_fraction, default=None, help="weight-noise η of the noise run")
    p.add_argument("--noise-scale", choices=NOISE_SCALES, default=None,
                   help="η relative to each matrix's max|W| (default) or each row's (η ≈ 1.2·σ mimics variation σ)")
    p.add_argument("--lr", type=float, default=None, help="override the config's learning rate")
    p.add_argument("--tbptt-steps", type=int, default=None,
                   help="override the config's truncated back-propagation length, steps (SOC; 0 = whole window)")
    p.add_argument("--init-from", help="start from this checkpoint's weights (e.g. noise-aware fine-tuning)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(run=cmd_train, show=lambda r: print(json.dumps(r, indent=2)))

    p = sub.add_parser("predict", help="predict on a file: audio clip, trajectory CSV/JSON or battery CSV")
    p.add_argument("--task", choices=TASK_NAMES, required=True, help="which task model")
    p.add_argument("path", help="the input file")
    p.add_argument("--checkpoint", help="checkpoint folder (default pretrained/<task>)")
    _add_hardware_args(p)
    _add_gate_bits(p)
    p.add_argument("--snr-db", type=float, default=None,
                   help="add white noise at this SNR (dB): to the waveform for audio, to the model inputs otherwise")
    p.add_argument("--threshold", type=float, default=None,
                   help="two-class tasks (trajectory): call the file 'false' when its mean P(false) over the windows "
                        "exceeds this (default: the more probable label, i.e. 0.5); operating points: model card")
    p.add_argument("--allow-missing", action="store_true",
                   help="trajectory: accept empty cells (rows that carry only some fields, as ADS-B messages and "
                        "OpenSky state vectors do) and interpolate each field from the rows that carry it")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(run=cmd_predict, show=_print_predict)

    p = sub.add_parser("evaluate", help="metric vs weight bits, sigma and input SNR on a data split")
    p.add_argument("--task", choices=TASK_NAMES, required=True, help="which task model")
    p.add_argument("--checkpoint", help="checkpoint folder (default pretrained/<task>)")
    p.add_argument("--data-dir", help="built dataset folder (default data/<task>)")
    p.add_argument("--split", choices=("train", "val", "test"), default="test",
                   help="data split (test = the task's evaluation sets, e.g. the three FUDS traces)")
    p.add_argument("--bits", type=_bits_list, default=[2, 3, 4, 5, 6, 7, 8, 16, 32], help="weight bits list")
    p.add_argument("--act-bits", type=_bits, default=8, help="activation bits for quantized weights")
    _add_gate_bits(p)
    p.add_argument("--sigma", dest="sigma_list", type=_sigma_list, default=[0.0], help="programming sigma list")
    p.add_argument("--snr-db", type=_float_list, default=None,
                   help="input SNR list (dB); clean is always included (audio: noise on the rebuilt waveforms of the "
                        "demo corpus)")
    p.add_argument("--preset", choices=("ideal", "rram_1t1r"), default="ideal",
                   help="device preset: ideal (only quantization and sigma act) or rram_1t1r (all non-idealities)")
    p.add_argument("--adc-bits", type=_bits, default=None, help="ADC bits (overrides the preset)")
    p.add_argument("--seed", type=_seed, default=0, help="first device seed")
    p.add_argument("--seeds", type=_positive_int, default=1, help="device seeds per setting")
    p.add_argument("--act-percentile", type=_percentile_list, default=None,
                   help="calibrate activation ranges on [100-p, p] percentiles (100 = min/max; default: the "
                        "checkpoint's, chosen by `calibrate`, else the task's: 99.99 for trajectory, 100 for audio "
                        "and soc); a comma-separated list evaluates each (rows carry act_percentile)")
    p.add_argument("--out", help="also write the rows as CSV")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(run=cmd_evaluate, show=_print_evaluate, sigma=None)

    p = sub.add_parser("experiment", help="run a paper experiment (bits, sigma, snr) -> results/<task>_<name>.csv")
    p.add_argument("--task", choices=TASK_NAMES, required=True, help="which task model")
    p.add_argument("--name", choices=EXPERIMENT_NAMES, required=True,
                   help="bits (PTQ vs QAT), sigma (float vs noise-trained), snr (input noise), families, "
                        "unusual, operating, incident, tracks and detection (trajectory: per false family; false "
                        "alarms on odd-shaped real flights; detection at false-alarm rates fixed on validation; a real "
                        "flight under GNSS interference; whole real and false tracks judged as predict judges a "
                        "file; the magnitude each family is caught from, 50 and 90 %%)")
    p.add_argument("--checkpoint", help="task folder with the deployed model and float/ (default pretrained/<task>)")
    p.add_argument("--data-dir", help="built dataset folder (default data/<task>)")
    p.add_argument("--bits", type=_bits_list, default=None, help="weight bits list (bits experiment)")
    p.add_argument("--sigmas", type=_sigma_list, default=None, help="sigma list (sigma experiment)")
    p.add_argument("--snrs", type=_float_list, default=None, help="SNR list in dB (snr experiment)")
    p.add_argument("--seeds", type=_positive_int, default=5, help="device seeds (sigma experiment)")
    p.add_argument("--act-bits", type=_bits, default=8,
                   help="activation bits of the quantized models (2..16, 32 = float)")
    _add_gate_bits(p, " (bits, sigma, snr)")
    p.add_argument("--act-percentile", type=_percentile, default=None,
                   help="activation range calibration of all quantized models, as for evaluate (default: each "
                        "model's own, see calibrate)")
    p.add_argument("--qat-epochs", type=int, default=2, help="QAT fine-tuning epochs per precision")
    p.add_argument("--limit", type=_positive_int, default=None,
                   help="evaluate at most this many sequences per set (seeded)")
    p.add_argument("--out", help="CSV path (default results/<task>_<name>.csv)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(run=cmd_experiment, show=lambda r: print(f"wrote {r['csv']} ({len(r['rows'])} rows)"))

    p = sub.add_parser("plan", help="fusion quantization: bits per matrix and activation -> results/plan_<task>.json")
    p.add_argument("--task", choices=TASK_NAMES, required=True, help="which task model")
    p.add_argument("--checkpoint", help="checkpoint to plan (default pretrained/<task>/float)")
    p.add_argument("--data-dir", help="built dataset folder (default data/<task>)")
    p.add_argument("--tolerance", type=_tolerance, default=None,
                   help="allowed loss vs float on validation, metric points (default 1 accuracy point, 0.1 RMSE "
                        "point), or w6a8: what the uniform 6-bit-weight / 8-bit-activation model loses")
    p.add_argument("--max-states", type=_positive_int, default=32, help="conductance states per device (default 32)")
    p.add_argument("--max-slices", type=_positive_int, default=2, help="device pairs one weight may span (default 2)")
    p.add_argument("--dac-bits", type=_bits, default=8, help="DAC bits of row inputs (default 8)")
    p.add_argument("--adc-bits", type=_bits, default=FLOAT_BITS, help="ADC bits of partial sums (default 32 = ideal)")
    p.add_argument("--circuit", choices=("lut", "pwl"), default="lut", help="sigmoid/tanh periphery")
    p.add_argument("--lut-bits", type=_bits, default=10, help="look-up-table address bits (default 10)")
    p.add_argument("--act-bits", type=_bits, default=None,
                   help="hold every activation at these bits and plan the weights only (default: plan both)")
    p.add_argument("--sigma", type=_fraction, default=0.0, help="programming variation during the analysis")
    p.add_argument("--seeds", type=_positive_int, default=3, help="device seeds when sigma > 0")
    p.add_argument("--limit", type=_positive_int, default=512, help="validation sequences used (seeded subset)")
    p.add_argument("--holdout", type=_count, default=512,
                   help="at most this many other validation sequences check the plan; descent steps are undone "
                        "until it is within the tolerance there too (0 = no check; skipped below 200 available)")
    p.add_argument("--qat-epochs", type=int, default=2, help="QAT fine-tuning epochs of the plan (0 = none)")
    p.add_argument("--out", help="JSON path (default results/plan_<task>.json)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(run=cmd_plan, show=_print_plan)

    p = sub.add_parser("calibrate", help="choose a checkpoint's activation calibration on validation and store it")
    p.add_argument("--task", choices=TASK_NAMES, required=True, help="which task model")
    p.add_argument("--checkpoint", help="checkpoint folder (default pretrained/<task>)")
    p.add_argument("--data-dir", help="built dataset folder (default data/<task>)")
    p.add_argument("--bits", type=_bits_list, default=None,
                   help="weight bits evaluated (default 2,3,4,5,6,7,8,16; the choice averages those from 4 to 16)")
    p.add_argument("--percentiles", type=_percentile_list, default=None,
                   help="calibrations compared (default 100,99.999,99.99,99.9,99.5; 100 = min/max)")
    p.add_argument("--act-bits", type=_bits, default=8, help="activation bits")
    p.add_argument("--dry-run", action="store_true", help="report the choice without writing it into the checkpoint")
    p.add_argument("--out", help="also write the sweep's rows as CSV")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(run=cmd_calibrate, show=_print_calibrate)

    p = sub.add_parser("card", help="write pretrained/<task>/MODEL_CARD.md from the checkpoints and results/")
    p.add_argument("--task", choices=TASK_NAMES, required=True, help="which task model")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(run=cmd_card, show=lambda r: print(f"wrote {r['path']}"))

    p = sub.add_parser("bench", help="time the crossbar GRU against torch.nn.GRU (paper-sized model)")
    p.add_argument("--repeats", type=int, default=5, help="timed repetitions (median reported)")
    p.add_argument("--quick", action="store_true", help="a small model and input (for smoke tests)")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(run=cmd_bench, show=_print_bench)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point; returns the exit code (0 ok, 2 bad input)."""
    args = _parser().parse_args(argv)
    try:
        result = args.run(args)
    except MemgruError as exc:
        sys.stderr.write(f"memgru {args.command}: error: {exc}\n")
        return EXIT_BAD_INPUT
    try:
        if args.json:
            print(json.dumps(result, sort_keys=True))
        else:
            args.show(result)
        sys.stdout.flush()
    except BrokenPipeError:  # the reader went away (`... | head`): the output was not wanted, not an error
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # so the exit-time flush cannot fail
    return 0
