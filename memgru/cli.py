"""Command line: `python -m memgru <command>`.

Every command accepts `--json` (one JSON document on stdout). Bad input exits with code 2 and one
line on stderr, never a traceback.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any, NoReturn

from memgru.config import FLOAT_BITS, DeviceConfig, QuantConfig
from memgru.errors import MemgruError
from memgru.tasks.registry import TASK_NAMES, load_task_model

EXIT_BAD_INPUT = 2


class _Parser(argparse.ArgumentParser):
    """argparse that reports a usage error as one line and exit code 2."""

    def error(self, message: str) -> NoReturn:
        sys.stderr.write(f"memgru {self.prog.split()[-1]}: error: {message}\n")
        raise SystemExit(EXIT_BAD_INPUT)


def _bits(text: str) -> int:
    try:
        value = int(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"bits must be an integer, got {text!r}") from exc
    if value != FLOAT_BITS and not 2 <= value <= 16:
        raise argparse.ArgumentTypeError(f"bits must be 2..16 or 32 (float), got {value}")
    return value


def _fraction(text: str) -> float:
    try:
        value = float(text)
    except ValueError as exc:
        raise argparse.ArgumentTypeError(f"expected a number, got {text!r}") from exc
    if not 0.0 <= value <= 1.0:
        raise argparse.ArgumentTypeError(f"sigma must be in [0, 1] (fraction of g_max - g_min), got {value}")
    return value


def _add_hardware_args(p: argparse.ArgumentParser, weight_bits: int = FLOAT_BITS) -> None:
    p.add_argument("--weight-bits", type=_bits, default=weight_bits, help="weight bits 2..16, 32 = float")
    p.add_argument("--act-bits", type=_bits, default=FLOAT_BITS, help="activation bits 2..16, 32 = float")
    p.add_argument("--preset", choices=("ideal", "rram_1t1r"), default=None,
                   help="device preset (default: rram_1t1r when --sigma > 0 or bits < 32, else ideal)")
    p.add_argument("--sigma", type=_fraction, default=None,
                   help="programming variation, std as a fraction of g_max - g_min (overrides the preset)")
    p.add_argument("--adc-bits", type=_bits, default=None, help="ADC bits (overrides the preset)")
    p.add_argument("--seed", type=int, default=0, help="device seed (programming variation, faults, read noise)")


def hardware_from_args(args: argparse.Namespace) -> tuple[QuantConfig, DeviceConfig]:
    """QuantConfig and DeviceConfig described by the shared hardware options."""
    quant = QuantConfig(weight_bits=args.weight_bits, act_bits=args.act_bits)
    preset = args.preset or ("rram_1t1r" if (args.sigma or 0) > 0 else "ideal")
    changes: dict[str, Any] = {}
    if args.sigma is not None:
        changes["prog_sigma"] = args.sigma
    if args.adc_bits is not None:
        changes["adc_bits"] = args.adc_bits
    return quant, DeviceConfig.preset(preset, **changes)


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


def _parser() -> _Parser:
    parser = _Parser(prog="memgru", description="GRU networks on memristor (RRAM) crossbars.")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)

    p = sub.add_parser("crossbar", help="program a task model onto crossbars: conductance maps and summary")
    p.add_argument("--task", choices=TASK_NAMES, required=True)
    p.add_argument("--config", help="model config JSON (ModelConfig or experiment config) instead of the checkpoint")
    _add_hardware_args(p, weight_bits=6)
    p.add_argument("--export", metavar="DIR", help="write conductances (NPZ + CSV) and summary.json into DIR")
    p.add_argument("--json", action="store_true", help="print one JSON document")
    p.set_defaults(run=cmd_crossbar, show=_print_crossbar)

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
    if args.json:
        print(json.dumps(result, sort_keys=True))
    else:
        args.show(result)
    return 0
