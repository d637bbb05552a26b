"""The dashboard's pure parts: figure builders (memgru.plots), data sources, settings mapping, exports."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from memgru.config import FLOAT_BITS, DeviceConfig, QuantConfig
from memgru.crossbar import STUCK_HRS, STUCK_LRS, conductance_to_weight, program
from memgru.errors import MemgruError
from memgru.plots import (
    block_table,
    conductance_heatmap,
    conductance_histogram,
    crossbar_block,
    curve_table,
    heatmap_stride,
    metric_curves,
    stuck_map,
    tiles_in,
    training_curves,
    weight_heatmap,
)
from memgru.tasks.registry import load_task_model as load_model
from ui.controls import DEFAULTS, FLOAT, OFF, settings_from_values
from ui.figures import figure_html, plot_config, table_csv
from ui.sources import (
    checkpoint_status,
    live_inputs_missing,
    parse_results,
    read_training_log,
    recompute,
    training_logs,
)

H, IN = 6, 10
"""A GRU-style matrix: 3 gates x 6 outputs, 10 inputs."""


@pytest.fixture(scope="module")
def pm():
    """A [3H, IN] matrix on small 4-row x 4-column arrays (2 outputs each) with variation and faults."""
    torch.manual_seed(0)
    device = DeviceConfig.rram_1t1r(rows=4, cols=4, prog_sigma=0.05, stuck_hrs=0.05, stuck_lrs=0.05)
    return program(torch.randn(3 * H, IN), torch.randn(3 * H), QuantConfig(weight_bits=4), device, seed=3)


def test_gate_block_is_its_rows_of_the_matrix(pm):
    block = crossbar_block(pm, gate="n")
    assert block.out_offset == 2 * H and block.row_offset == 0
    assert block.g_pos.shape == (H, IN)
    np.testing.assert_array_equal(block.g_neg, pm.chip.g_neg[0, 2 * H :].numpy())
    np.testing.assert_allclose(block.target_weight, conductance_to_weight(pm.cmap)[2 * H :].numpy())
    np.testing.assert_array_equal(block.weight, pm.effective_weight()[2 * H :].numpy())


def test_tiles_of_a_gate_and_a_tile_block(pm):
    # gate z = outputs 6..11 -> column tiles 3, 4, 5 (2 outputs per array); rows 0..9 -> 3 row tiles
    assert tiles_in(pm, "z") == [(r, c) for r in range(3) for c in (3, 4, 5)]
    block = crossbar_block(pm, gate="z", tile=(2, 4))
    assert (block.out_offset, block.row_offset, block.g_pos.shape) == (8, 8, (2, 2))
    np.testing.assert_array_equal(block.stuck_pos, pm.chip.stuck_pos[0, 8:10, 8:10].numpy())


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"gate": "q"}, "unknown gate"), ({"gate": "r", "tile": (0, 5)}, "does not hold"), ({"slice_index": 1}, "slice 1"),
])
def test_bad_block_choices_are_clear_errors(pm, kwargs, message):
    with pytest.raises(MemgruError, match=message):
        crossbar_block(pm, **kwargs)


def test_bit_slices_are_separate_blocks():
    pm8 = program(torch.randn(6, 5), None, QuantConfig(weight_bits=8), DeviceConfig.rram_1t1r(), seed=0)
    assert pm8.cmap.n_slices == 2
    high = crossbar_block(pm8, slice_index=1)
    np.testing.assert_array_equal(high.target_pos, pm8.cmap.g_pos[1].numpy())
    assert "slice 1 of 2" in high.title


def test_heatmaps_show_the_block_in_physical_orientation(pm):
    block = crossbar_block(pm, gate="r")
    fig = conductance_heatmap(block, "pos")
    z = np.asarray(fig.data[0].z)
    assert z.shape == (IN, H)  # rows (inputs) down, column pairs across
    np.testing.assert_allclose(z, np.round(block.g_pos.T, 4))
    assert (fig.data[0].zmin, fig.data[0].zmax) == (block.g_min, block.g_max)
    # tile boundaries: columns every 2 outputs, rows every 4 rows
    lines = [s for s in fig.layout.shapes if s.type == "line"]
    assert len(lines) == 2 + 2
    target = np.asarray(conductance_heatmap(block, "pos", target=True).data[0].z)
    assert not np.allclose(target, z)  # variation moved the programmed values
    w = weight_heatmap(block).data[0]
    assert w.zmid == 0 and w.zmax == pytest.approx(np.abs(block.weight).max())


def test_big_heatmaps_are_strided_and_say_so():
    assert heatmap_stride((256, 256)) == 1 and heatmap_stride((512, 512)) == 2
    pm_big = program(torch.randn(1152, 384), None, QuantConfig(weight_bits=4), DeviceConfig.ideal(), seed=0)
    fig = conductance_heatmap(crossbar_block(pm_big), "neg")
    assert np.asarray(fig.data[0].z).shape == (384 // 3, 1152 // 3)
    assert "1 in 3 rows and columns shown" in fig.layout.title.text


def test_stuck_map_marks_every_stuck_device(pm):
    block = crossbar_block(pm)
    fig = stuck_map(block)
    marked = sum(len(t.x) for t in fig.data)
    assert marked == int((block.stuck_pos > 0).sum() + (block.stuck_neg > 0).sum()) > 0
    hrs_pos = next(t for t in fig.data if t.name.startswith("G+ stuck at HRS"))
    o, r = np.nonzero(block.stuck_pos == STUCK_HRS)
    np.testing.assert_array_equal(hrs_pos.x, o)
    np.testing.assert_array_equal(hrs_pos.y, r)
    assert f"({int((block.stuck_neg == STUCK_LRS).sum())})" in fig.data[3].name


def test_histogram_counts_every_device_and_table_has_every_pair(pm):
    block = crossbar_block(pm, gate="z")
    fig = conductance_histogram(block)
    assert [t.name for t in fig.data] == ["target", "programmed"]
    assert all(int(np.sum(t.y)) == 2 * H * IN for t in fig.data)
    table = block_table(block)
    assert len(table) == H * IN and table["output"].min() == H
    row = table.iloc[IN + 3]  # output H + 1, row 3
    assert (row["output"], row["row"]) == (H + 1, 3)
    assert row["g_pos_uS"] == pytest.approx(block.g_pos[1, 3])


def test_curve_table_averages_seeds_and_joins_the_float_reference():
    rows = pd.DataFrame({
        "weight_bits": [4, 4, 32, 4, 4], "act_bits": [8, 8, 32, 8, 8], "sigma": [0.0, 0.0, 0.0, 0.1, 0.1],
        "snr_db": [np.nan] * 5, "seed": [0, 1, 0, 0, 1], "accuracy": [80.0, 90.0, 95.0, 60.0, 70.0],
        "n": 10, "seconds": 1.0,
    })
    table = curve_table(rows, "weight_bits")
    assert set(table["series"]) == {"sigma=0.0", "sigma=0.1"}
    assert table[table["series"] == "sigma=0.0"]["weight_bits"].tolist() == [4, 32]
    first = table[(table["series"] == "sigma=0.0") & (table["weight_bits"] == 4)].iloc[0]
    assert first["accuracy_mean"] == 85.0 and first["seeds"] == 2
    assert first["accuracy_std"] == pytest.approx(np.std([80, 90], ddof=1))
    fig = metric_curves(table, "weight_bits", current=FLOAT_BITS)
    assert list(fig.layout.xaxis.categoryarray) == ["4", "float"]
    assert fig.layout.shapes[0].x0 == "float"
    by_sigma = curve_table(rows, "sigma")
    assert set(by_sigma["series"]) == {"weight_bits=4, act_bits=8", "weight_bits=32, act_bits=32"}
    # a percentile calibration or a gate precision only exists on quantized rows: the float reference joins anyway
    marked = rows.assign(act_percentile=[99.99, 99.99, np.nan, 99.99, 99.99], gate_bits=[10, 10, 32, 10, 10])
    assert curve_table(marked, "weight_bits").equals(table)
    with pytest.raises(MemgruError, match="no 'snr_db'"):
        curve_table(rows.drop(columns="snr_db"), "snr_db")
    with pytest.raises(MemgruError, match="no results with a value"):
        curve_table(rows, "snr_db")


def test_training_curves_have_loss_and_metric_per_run():
    logs = pd.DataFrame({"epoch": [1, 2, 1], "train_loss": [1, 0.5, 1], "val_loss": [1.1, 0.6, 1.2],
                         "val_metric": [3.0, 2.0, 3.5], "run": ["float", "float", "noise"]})
    fig = training_curves(logs, "rmse")
    assert [t.name for t in fig.data] == ["float · train loss", "float · val loss", "float · val rmse",
                                          "noise · train loss", "noise · val loss", "noise · val rmse"]
    assert list(fig.data[2].y) == [3.0, 2.0] and fig.data[2].xaxis == "x2"
    with pytest.raises(MemgruError, match="lacks column"):
        training_curves(logs.drop(columns="val_loss"), "rmse")
    noisy = training_curves(logs.assign(val_metric_noisy=[None, None, 4.0]), "rmse")
    assert [t.name for t in noisy.data][-1] == "noise · val rmse under weight noise"  # only the run that has it


@pytest.mark.parametrize(("text", "message"), [
    ("", "is empty"), ("a,b\n1,2\n", "metric column"), ("weight_bits,accuracy,rmse\n4,1,2\n", "metric column"),
    ("seed,accuracy\n0,90\n", "none of the setting columns"), ("weight_bits,accuracy\nfour,90\n", "must hold numbers"),
])
def test_bad_results_tables_are_refused(text, message):
    with pytest.raises(MemgruError, match=message):
        parse_results(text, "x.csv")


def test_training_log_reader(tmp_path: Path):
    path = tmp_path / "log_float.jsonl"
    path.write_text('{"epoch": 1, "train_loss": 1, "val_loss": 1, "val_metric": 50}\nnot json\n')
    with pytest.raises(MemgruError, match="line 2 is not JSON"):
        read_training_log(path)
    path.write_text('{"epoch": 1, "train_loss": 1}\n')
    with pytest.raises(MemgruError, match="line 1 lacks"):
        read_training_log(path)
    path.write_text("\n")
    with pytest.raises(MemgruError, match="no epochs"):
        read_training_log(path)
    assert training_logs("soc", tmp_path) is None


def test_logs_are_read_per_run(logs: Path, folders):
    table = training_logs("soc")
    assert table.groupby("run").size().to_dict() == {"float": 4, "noise": 3}


def test_checkpoint_status_model_card_and_corrupt_config(trained: Path, folders):
    status = checkpoint_status("trajectory")
    assert status.metrics == {"test_accuracy": 91.5} and status.error is None
    assert checkpoint_status("audio").config is None
    (trained / "config.json").write_text("{broken")
    assert "not valid JSON" in checkpoint_status("trajectory").error


def test_load_model_prefers_the_checkpoint_and_seeds_the_random_init(trained: Path, folders):
    model, origin = load_model("trajectory")
    assert origin.startswith("pretrained") and model.gru.hidden_size == 8
    state = torch.random.get_rng_state()
    a, origin = load_model("soc")
    b, _ = load_model("soc")
    assert origin.startswith("random init (seed 0)")
    assert torch.equal(a.gru.weight_hh_l0, b.gru.weight_hh_l0)
    assert torch.equal(torch.random.get_rng_state(), state)  # global RNG untouched


def test_live_inputs_and_recompute(trained: Path, folders):
    assert live_inputs_missing("trajectory") == []
    missing = live_inputs_missing("soc")
    assert len(missing) == 2 and "trained checkpoint" in missing[0] and "memgru data soc" in missing[1]
    model, _ = load_model("trajectory")
    seen = []
    rows = recompute("trajectory", model, "snr_db", [None, 0.0], weight_bits=6, act_bits=8, sigma=0.02, snr_db=None,
                     seeds=range(3, 5), device=DeviceConfig.rram_1t1r(), limit=10, progress=seen.append)
    assert rows[["weight_bits", "act_bits", "sigma", "seed"]].drop_duplicates().values.tolist() == [
        [6, 8, 0.02, 3], [6, 8, 0.02, 4]]
    assert rows["snr_db"].isna().sum() == 2 and (rows["snr_db"] == 0).sum() == 2
    assert (rows["n"] == 10).all() and seen[-1] == 1.0 and len(seen) == 4
    assert rows["accuracy"].between(0, 100).all()


def test_settings_from_widget_values():
    s = settings_from_values(DEFAULTS)
    assert (s.quant.weight_bits, s.quant.act_bits, s.snr_db, s.seed) == (6, 8, None, 0)
    assert s.device == DeviceConfig.rram_1t1r(prog_sigma=0.02)
    assert s.label() == "W6/A8 · rram_1t1r, σ = 0.020 · input SNR off · seed 0"
    f = settings_from_values({**DEFAULTS, "weight_bits": FLOAT, "act_bits": FLOAT, "preset": "ideal",
                              "sigma": 0.0, "snr_db": 10})
    assert f.quant == QuantConfig() and f.device == DeviceConfig.ideal() and f.snr_db == 10.0
    assert OFF in f.label() or "10 dB" in f.label()
    g = settings_from_values({**DEFAULTS, "gate_bits": 10})
    assert g.quant.gate_bits == 10 and g.quant.act_bits_at("gate") == 10 and g.quant.act_bits_at("preact") == 8
    assert g.label().startswith("W6/A8/G10 · ")
    assert settings_from_values({**DEFAULTS, "gate_bits": 8}).label().startswith("W6/A8 · ")  # same as activations
    for bad in ({"weight_bits": 40}, {"weight_bits": "eight"}, {"preset": "pcm"}, {"seed": -1}, {"snr_db": "loud"},
                {"gate_bits": 1}):
        with pytest.raises(MemgruError):
            settings_from_values({**DEFAULTS, **bad})


def test_exports(pm):
    assert plot_config("f", "png")["toImageButtonOptions"] == {"format": "png", "filename": "f", "scale": 2}
    assert plot_config("f", "svg")["toImageButtonOptions"] == {"format": "svg", "filename": "f"}
    fig = weight_heatmap(crossbar_block(pm))
    html = figure_html(fig, "w")
    assert "<html>" in html and "Plotly.newPlot" in html and '"format": "svg"' in html
    assert len(html) > 1_000_000  # plotly.js embedded: opens offline
    table = pd.DataFrame({"a": [1.0 / 3]})
    assert table_csv(lambda: table) == table_csv(table) == "a\n0.333333\n"
    assert json.loads(fig.to_json())["data"][0]["type"] == "heatmap"


def test_level_flight_altitude_is_shown_over_a_flight_level_not_its_reporting_steps():
    """A level cruise (25-ft reporting jitter) gets at least 1,000 ft of axis and colour scale, centred on it;
    a climb keeps its own range."""
    from memgru.plots import ALTITUDE_MIN_SPAN_FT, altitude_figure, track_figure, track_table

    t = np.arange(0.0, 200.0, 10.0)
    level = track_table(pd.DataFrame({"time_s": t, "latitude": 47.0 + t * 1e-4, "longitude": 8.0 + 0 * t,
                                      "altitude": 37000.0 + 25.0 * (np.arange(len(t)) % 2)}))
    lo, hi = altitude_figure(level).layout.yaxis.range
    assert hi - lo >= ALTITUDE_MIN_SPAN_FT and lo < 37000.0 and hi > 37025.0
    marker = track_figure(level).data[0].marker
    assert marker.cmax - marker.cmin == pytest.approx(ALTITUDE_MIN_SPAN_FT)
    assert marker.cmin < 37000.0 < 37025.0 < marker.cmax
    climb = level.assign(altitude=np.linspace(10000.0, 20000.0, len(t)))
    lo, hi = altitude_figure(climb).layout.yaxis.range
    assert lo <= 10000.0 and hi >= 20000.0 and hi - lo < 12000.0
    assert (track_figure(climb).data[0].marker.cmin, track_figure(climb).data[0].marker.cmax) == (10000.0, 20000.0)


def test_window_scores_show_which_stretch_of_a_track_drove_its_verdict():
    from memgru.plots import window_scores_figure, window_scores_table

    table = window_scores_table([1000.0, 1080.0, 1160.0], {"float": [0.1, 0.8, 0.2], "crossbar": [0.2, 0.9, 0.1]})
    assert table["start_min"].tolist() == pytest.approx([0.0, 80 / 60, 160 / 60])
    fig = window_scores_figure(table, 0.3)
    assert [d.name for d in fig.data] == ["float", "crossbar"]
    assert list(fig.data[1].y) == pytest.approx([20.0, 90.0, 10.0])
    assert fig.layout.shapes[0].y0 == pytest.approx(30.0) and tuple(fig.layout.yaxis.range) == (0, 100)
    with pytest.raises(MemgruError, match="2 window scores for 3 windows"):
        window_scores_table([0.0, 80.0, 160.0], {"float": [0.1, 0.2]})
