"""Every dashboard page under Streamlit's AppTest: renders without exceptions, widgets by key, a control
change changes what is shown, bad input and bad state give an error element."""

from __future__ import annotations

import base64
import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from streamlit.testing.v1 import AppTest

from memgru.checkpoint import read_config
from memgru.config import ModelConfig
from memgru.models import build_model, count_parameters
from memgru.tasks.registry import task_spec

from .conftest import run_page as run

APP_ROOT = Path(__file__).resolve().parents[2]

HOME, CROSSBAR = "app.py", "pages/4_Crossbar.py"
QUANT, TRAINING = "pages/5_Quantization_and_robustness.py", "pages/6_Training.py"


def figure(at: AppTest, index: int = 0) -> dict:
    """The plotly JSON of the `index`-th chart on the page."""
    return json.loads(at.get("plotly_chart")[index].proto.spec)


def values(data: list | dict) -> np.ndarray:
    """A plotly JSON array, plain or typed ({"dtype", "bdata"} base64)."""
    if isinstance(data, dict):
        return np.frombuffer(base64.b64decode(data["bdata"]), dtype=np.dtype(data["dtype"]))
    return np.asarray(data)


def errors(at: AppTest) -> str:
    return " | ".join(e.value for e in at.error)


def test_home_without_checkpoints(folders):
    at = run(HOME)
    table = at.dataframe[0].value
    assert table["task"].tolist() == ["audio", "trajectory", "soc"]
    assert set(table["weights"]) == {"none yet (pages use a random init)"}
    assert table.loc[0, "parameters"] == 174858  # the lite audio GRU (2 x 128)
    assert "No pretrained checkpoints" in at.info[0].value
    assert not at.error


def test_home_shows_model_card_metrics(trained):
    at = run(HOME)
    table = at.dataframe[0].value.set_index("task")
    assert table.loc["trajectory", "weights"] == "pretrained"
    tiny = ModelConfig.from_dict(read_config(trained)["model"])
    assert table.loc["trajectory", "parameters"] == count_parameters(build_model(tiny))
    card = at.dataframe[1].value
    assert card.loc[0, "test_accuracy"] == 91.5


def test_home_reports_a_corrupt_checkpoint(trained):
    (trained / "config.json").write_text("{not json")
    at = run(HOME)
    assert "trajectory: the checkpoint" in errors(at) and "not valid JSON" in errors(at)


def test_settings_persist_across_pages(folders):
    at = run(HOME)
    at.sidebar.select_slider(key="weight_bits").set_value(4).run()
    at.sidebar.slider(key="sigma").set_value(0.05).run()
    at.switch_page(TRAINING).run()
    assert not at.exception
    assert at.sidebar.select_slider(key="weight_bits").value == 4
    assert at.sidebar.slider(key="sigma").value == 0.05
    assert "W4/A8 · rram_1t1r, σ = 0.050" in at.sidebar.caption[0].value


def test_impossible_session_state_gives_an_error_and_is_reset(folders):
    at = run(TRAINING, weight_bits=99, preset="pcm")
    assert "weight_bits = 99 is not a valid choice" in errors(at)
    assert "preset = 'pcm'" in errors(at)
    assert at.sidebar.select_slider(key="weight_bits").value == 6


def test_crossbar_page_follows_the_controls(folders):
    hidden = task_spec("soc").model.hidden
    at = run(CROSSBAR, xb_task="soc", xb_matrix="hh_l0")
    assert "random init" in at.warning[0].value
    assert len(at.get("plotly_chart")) == 5
    assert {b.key for b in at.get("download_button")} >= {"xb_map_csv", "xb_map_npz", "xb_gpos_html", "xb_gpos_csv"}
    metrics = {m.label: m.value for m in at.metric}
    assert metrics["Matrix (outputs × rows)"] == f"{3 * hidden} × {hidden}"  # W_hh: 3 gates x H, H inputs
    g_before, err_before = values(figure(at)["data"][0]["z"]), metrics["Weight error (rms)"]

    at.sidebar.slider(key="sigma").set_value(0.1).run()
    assert not np.array_equal(values(figure(at)["data"][0]["z"]), g_before)
    assert float(at.metric[4].value.rstrip(" %")) > float(err_before.rstrip(" %"))

    at.selectbox(key="xb_gate").set_value("z").run()
    g_plus = figure(at)
    assert "gate z" in g_plus["layout"]["title"]["text"]
    assert values(g_plus["data"][0]["x"]).tolist() == list(range(hidden, 2 * hidden))  # gate z: outputs H..2H-1
    tiles = at.selectbox(key="xb_tile").options
    col_tiles = range(hidden // 64, math.ceil(2 * hidden / 64))  # 64 outputs (128 columns) per array
    assert len(tiles) == 1 + math.ceil(hidden / 128) * len(col_tiles)
    at.selectbox(key="xb_tile").set_value(tiles[-1]).run()
    assert f"column tile {col_tiles[-1]})" in figure(at)["layout"]["title"]["text"]

    at.sidebar.select_slider(key="weight_bits").set_value(8).run()  # 128 states needed, 32 on the device
    assert at.selectbox(key="xb_slice").options == ["0", "1"]
    assert not at.exception


def test_crossbar_page_uses_the_checkpoint_and_refuses_a_tampered_one(trained):
    at = run(CROSSBAR, xb_task="trajectory")
    assert not at.warning and "pretrained checkpoint" in at.caption[1].value
    assert at.metric[0].value == "24 × 3"  # tiny GRU: 3 gates x 8 hidden, 3 inputs
    (trained / "model.safetensors").write_bytes(b"not weights")
    at = run(CROSSBAR, xb_task="trajectory", seed=1)
    assert "does not match the sha256" in errors(at)


def test_quantization_page_without_results_says_what_to_run(folders):
    at = run(QUANT)
    assert "No precomputed results for audio" in at.info[0].value
    assert "python -m memgru evaluate --task audio" in at.info[0].value
    assert "python -m memgru plan --task audio" in at.info[1].value
    assert "trained checkpoint" in at.info[2].value and "python -m memgru data audio-demo" in at.info[2].value
    assert not at.get("plotly_chart")


def test_quantization_curves_mark_the_current_setting(results):
    (results.parent / "audio_broken.csv").write_text("x,y\n1,2\n")
    (results.parent / "audio_unusual.csv").write_text("name,false_alarm_pct,n\nall,12.5,8\n")  # a per-case table
    at = run(QUANT)
    assert "audio_broken.csv" in errors(at) and "file skipped" in errors(at)
    assert "audio_unusual.csv" not in errors(at) and "audio_unusual.csv" not in at.multiselect[0].options
    assert any("Per-case tables" in c.value and "audio_unusual.csv" in c.value for c in at.caption)
    fig = figure(at)
    assert [d["name"] for d in fig["data"]] == ["sigma=0.0", "sigma=0.05"]
    assert fig["data"][0]["x"] == ["2", "4", "6", "8", "float"]
    assert fig["layout"]["shapes"][0]["x0"] == "6"
    at.sidebar.select_slider(key="weight_bits").set_value("float").run()
    assert figure(at)["layout"]["shapes"][0]["x0"] == "float"
    at.selectbox(key="q_results_axis").set_value("sigma").run()
    fig = figure(at)
    assert fig["layout"]["shapes"][0]["x0"] == 0.02 and values(fig["data"][0]["x"]).tolist() == [0.0, 0.05]


def _plan_report() -> dict:
    """A plan report for the tiny model, assembled from the planner's own pieces."""
    from memgru.config import QuantConfig
    from memgru.fusion import PlanConstraints, plan_cost, slots, uniform_plan
    from memgru.layers import convert

    from .conftest import TINY

    model, c = build_model(TINY), PlanConstraints()
    all_slots = slots(convert(model, QuantConfig(), c.device(), 0), c)
    plan, uniform = uniform_plan(all_slots, 4, 6), uniform_plan(all_slots, 6, 8)
    return {
        "task": "audio", "plan": plan, "uniform_w6a8": uniform, "tolerance": 1.0, "higher_is_better": True,
        "slots": [{"name": s.name, "kind": s.kind, "size": s.size, "ladder": list(s.ladder), "floor": 2}
                  for s in all_slots],
        "cost": {"plan": plan_cost(model, plan, c), "uniform_w6a8": plan_cost(model, uniform, c)},
        "results": {"float": {"val": 90.0, "test": {"test": 88.0}}, "plan_qat": {"val": 89.5, "test": {"test": 87.0}}},
    }


def test_quantization_page_shows_the_fusion_plan(folders):
    at = run(QUANT)
    assert any("python -m memgru plan --task audio" in i.value for i in at.info)
    report = _plan_report()
    (folders["results"] / "plan_audio.json").write_text(json.dumps(report))
    at = run(QUANT)
    fig = figure(at)
    assert [d["name"] for d in fig["data"]] == ["uniform W6/A8", "plan"]
    assert values(fig["data"][1]["y"]).tolist() == list(report["plan"].values())
    cost = at.dataframe[0].value.set_index("item")
    assert cost.loc["total_weight_bits", "plan"] * 6 == cost.loc["total_weight_bits", "uniform_w6a8"] * 4
    assert set(at.dataframe[1].value["model"]) == {"float", "plan_qat"}
    (folders["results"] / "plan_audio.json").write_text('{"task": "audio"}')
    at = run(QUANT)
    assert "is not a plan report" in errors(at) and not at.exception


def test_quantization_upload_good_and_bad(folders, results_table: pd.DataFrame):
    at = run(QUANT, q_source="upload a results CSV")
    uploader = at.get("file_uploader")[0]
    uploader.set_value(("mine.csv", results_table.to_csv(index=False).encode(), "text/csv")).run()
    assert not at.error and len(at.get("plotly_chart")) == 1
    at.get("file_uploader")[0].set_value(("bad.csv", b"\xff\xfe\x00garbage", "text/csv")).run()
    assert "not a UTF-8 text file" in errors(at) and not at.get("plotly_chart")
    at.get("file_uploader")[0].set_value(("empty.csv", b"", "text/csv")).run()
    assert "empty.csv is empty" in errors(at)
    assert not at.exception


def test_quantization_live_recomputation(trained):
    at = run(QUANT, q_task="trajectory", q_live_seeds=2)
    assert not at.get("plotly_chart")
    at.button(key="q_live_run").click().run()
    assert not at.exception and not at.error
    fig = figure(at)
    assert fig["data"][0]["x"] == ["2", "4", "6", "8", "float"]
    assert "10 settings × sets, 240 sequences" in at.main.caption[-1].value  # 5 bit widths x 2 seeds x 24
    at.radio(key="q_live_sweep").set_value("sigma").run()
    at.button(key="q_live_run").click().run()
    assert values(figure(at)["data"][0]["x"]).tolist() == [0.0, 0.01, 0.02, 0.05, 0.1]
    at.radio(key="q_live_sweep").set_value("snr_db").run()
    at.button(key="q_live_run").click().run()
    assert values(figure(at)["data"][0]["x"]).tolist() == [0, 5, 10, 20, 30, 40]  # 'clean' has no x
    at.sidebar.select_slider(key="snr_db").set_value(20).run()
    assert figure(at)["layout"]["shapes"][0]["x0"] == 20
    at.radio(key="q_live_sweep").set_value("weight_bits").run()
    at.multiselect(key="q_live_bits").set_value([]).run()
    at.button(key="q_live_run").click().run()
    assert "Pick at least one weight bit width" in errors(at)


def test_training_page(logs: Path, folders):
    at = run(TRAINING)
    assert at.selectbox(key="t_task").value == "soc"  # the first task with logs
    fig = figure(at)
    assert len(fig["data"]) == 6 and fig["data"][3]["name"] == "noise · train loss"
    assert values(fig["data"][3]["x"]).tolist() == [1, 2, 3]
    best = at.dataframe[0].value
    assert best["run"].tolist() == ["float", "noise"] and best["epoch"].tolist() == [1, 1]  # rmse: lowest wins
    (logs / "log_noise.jsonl").write_text("garbage\n")
    at.run()
    assert "line 1 is not JSON" in errors(at)
    at.selectbox(key="t_task").set_value("audio").run()
    assert "No training logs for audio" in at.info[0].value


@pytest.mark.parametrize("page", [HOME, CROSSBAR, QUANT, TRAINING])
def test_every_page_has_the_shared_sidebar(folders, page):
    at = run(page, xb_task="soc")
    keys = {w.key for w in at.sidebar.select_slider} | {w.key for w in at.sidebar.slider}
    keys |= {w.key for w in at.sidebar.selectbox} | {w.key for w in at.sidebar.number_input}
    assert keys >= {"weight_bits", "act_bits", "snr_db", "sigma", "preset", "seed"}


PAGE_SCRIPTS = [HOME, *sorted(str(p.relative_to(APP_ROOT)) for p in (APP_ROOT / "pages").glob("*.py"))]


@pytest.mark.parametrize("script", PAGE_SCRIPTS)
def test_no_page_has_a_bare_literal_that_streamlit_magic_would_draw(script):
    """Streamlit "magic" draws any bare module-level expression (e.g. a docstring under a constant)."""
    import ast

    body = ast.parse((APP_ROOT / script).read_text()).body
    stray = [node.lineno for node in body[1:] if isinstance(node, ast.Expr) and isinstance(node.value, ast.Constant)]
    assert not stray, f"{script}: bare literals at lines {stray}"
