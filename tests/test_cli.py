"""CLI contract: --json documents, exports, and bad input -> exit code 2 with one line on stderr."""

import json
import subprocess
import sys

import numpy as np
import pytest

from memgru.cli import main


def run_cli(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "memgru", *args], capture_output=True, text=True, timeout=300)


def test_crossbar_json_summary(capsys):
    args = ["crossbar", "--task", "soc", "--weight-bits", "6", "--sigma", "0.05", "--preset", "rram_1t1r", "--json"]
    assert main(args) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["quant"]["weight_bits"] == 6 and doc["device"]["prog_sigma"] == 0.05
    assert {"gru.ih_l0", "gru.hh_l0", "head.weight"} <= set(doc["matrices"])
    hh = doc["matrices"]["gru.hh_l0"]
    # rram_1t1r: a 2-20 µS window, read one day after programming (drift only lowers conductances)
    assert 1.5 < hh["g_min_uS"] < 2.0 + 1e-9 and hh["g_max_uS"] <= 20.0 + 1e-9 and hh["drift_gain"] > 1
    assert doc["totals"]["devices"] == sum(m["devices"] for m in doc["matrices"].values())


def test_crossbar_export_writes_npz_csv_and_summary(tmp_path, capsys):
    out = tmp_path / "maps"
    assert main(["crossbar", "--task", "soc", "--weight-bits", "4", "--export", str(out), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert (out / "summary.json").is_file()
    with np.load(out / "gru.hh_l0.npz") as arrays:
        assert arrays["g_pos_uS"].shape[0] == 1
        assert len(np.unique(arrays["target_g_pos_uS"])) <= 8  # 4-bit weights: 2^(4-1) states
    header = (out / "gru.hh_l0.csv").read_text().splitlines()[0]
    assert header.startswith("slice,output,row,row_tile,col_tile,target_g_pos_uS")
    assert "gru.hh_l0.csv" in doc["export"]["files"]


@pytest.mark.parametrize(
    "args, words",
    [
        (["crossbar", "--task", "audio", "--weight-bits", "0"], "bits must be 2..16 or 32"),
        (["crossbar", "--task", "audio", "--weight-bits", "33"], "bits must be 2..16 or 32"),
        (["crossbar", "--task", "audio", "--sigma", "-0.1"], "sigma must be in [0, 1]"),
        (["crossbar", "--task", "audio", "--sigma", "1.5"], "sigma must be in [0, 1]"),
        (["crossbar", "--task", "weather"], "invalid choice"),
        (["crossbar", "--task", "soc", "--config", "/nonexistent.json"], "cannot read config"),
        (["nonsense"], "invalid choice"),
        (["plan", "--task", "soc", "--tolerance", "-1"], "tolerance must be in [0, 100)"),
        (["plan", "--task", "soc", "--tolerance", "lots"], "tolerance must be a number"),
        (["plan", "--task", "soc", "--dac-bits", "1"], "bits must be 2..16 or 32"),
        (["plan", "--task", "soc", "--max-slices", "0"], "positive integer"),
        (["plan", "--task", "soc", "--act-bits", "10"], "not allowed at the input point"),
    ],
)
def test_bad_arguments_exit_2_with_one_line(args, words, capsys):
    with pytest.raises(SystemExit) as exc:
        raise SystemExit(main(args))  # argparse errors exit inside main, MemgruError returns 2
    assert exc.value.code == 2
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and words in err and "Traceback" not in err


def test_bad_config_file_and_export_path_exit_2(tmp_path):
    bad = tmp_path / "bad.json"
    bad.write_text('{"hidden": -3}')
    file_in_the_way = tmp_path / "taken"
    file_in_the_way.write_text("x")
    for args, words in (
        (["crossbar", "--task", "soc", "--config", str(bad)], "hidden must be a positive integer"),
        (["crossbar", "--task", "soc", "--export", str(file_in_the_way)], "exists and is not a folder"),
        (["data", "soc", "--out", str(file_in_the_way)], "exists and is not a folder"),
    ):
        proc = run_cli(*args)
        assert proc.returncode == 2, proc.stderr
        assert len(proc.stderr.strip().splitlines()) == 1 and words in proc.stderr


def test_bench_quick_json():
    proc = run_cli("bench", "--quick", "--repeats", "1", "--json")
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(proc.stdout)
    assert doc["float_ms"] > 0 and doc["crossbar_ms"] > 0
    assert doc["ratio"] == pytest.approx(doc["crossbar_ms"] / doc["float_ms"])
    assert len(doc["runs"]) == 5


def test_help_explains_every_command():
    from memgru.cli import _parser

    proc = run_cli("--help")
    assert proc.returncode == 0
    sub = next(a for a in _parser()._actions if a.dest == "command")
    commands = {c.dest: c.help for c in sub._choices_actions}
    assert set(commands) == set(sub.choices) >= {"crossbar", "data", "train", "predict", "evaluate", "experiment",
                                                 "plan", "card", "bench"}
    for name, text in commands.items():
        assert text and len(text) > 20, name  # one explaining sentence per command
        assert name in proc.stdout and text.split()[0] in proc.stdout
        for action in sub.choices[name]._actions:  # every option of every command says what it is
            assert action.help, f"{name} {action.option_strings or action.dest} has no help text"


def test_experiment_choices_match_the_experiments_module():
    from memgru.cli import EXPERIMENT_NAMES
    from memgru.experiments import EXPERIMENTS

    assert EXPERIMENT_NAMES == EXPERIMENTS  # the CLI keeps its own copy so `--help` does not import torch


def test_plan_report_records_the_command_that_made_it():
    from memgru.cli import _parser, _plan_command

    args = _parser().parse_args(["plan", "--task", "audio", "--tolerance", "w6a8", "--act-bits", "8",
                                      "--seeds", "5", "--out", "results/p.json"])
    want = "python -m memgru plan --task audio --tolerance w6a8 --act-bits 8 --out results/p.json"
    assert _plan_command(args) == want  # --seeds only counts with sigma > 0
    args = _parser().parse_args(["plan", "--task", "soc", "--sigma", "0.05", "--seeds", "5"])
    assert _plan_command(args) == "python -m memgru plan --task soc --sigma 0.05 --seeds 5"
