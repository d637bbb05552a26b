"""Crossbar page: the programmed conductances of one matrix of a task model, per gate, part and tile."""

import io

import numpy as np
import streamlit as st

from memgru.errors import MemgruError
from memgru.export import conductance_table
from memgru.layers import GATES, crossbar_layers
from memgru.plots import (
    block_table,
    conductance_heatmap,
    conductance_histogram,
    crossbar_block,
    stuck_map,
    tiles_in,
    weight_heatmap,
)
from memgru.tasks.registry import TASK_NAMES
from ui.cache import chip_model, matrix_summary, task_model
from ui.controls import choose, sidebar
from ui.figures import show_figure

GATE_LABELS = {"all": "all gates", "r": "r (reset)", "z": "z (update)", "n": "n (new)"}
WHOLE = "all arrays of the selection"


def matrix_label(name: str) -> str:
    """'ih_l0' -> 'layer 0 · input part W_ih'; Linear layers have one matrix, 'weight'."""
    part, _, layer = name.partition("_l")
    labels = {"ih": "input part W_ih (x_t → gates)", "hh": "recurrent part W_hh (h_t−1 → gates)"}
    return f"GRU layer {layer} · {labels[part]}" if part in labels and layer else name


st.set_page_config(page_title="memgru · crossbar", layout="wide")
settings = sidebar()
st.title("Crossbar arrays")
st.caption("Each weight matrix sits on 1T1R arrays: inputs drive the rows, every output is a differential "
           "column pair (w ∝ G+ − G−). Pick a matrix; the sidebar sets bits, σ, preset and device seed.")

task = choose("Task model", TASK_NAMES, key="xb_task")
try:
    _, origin = task_model(task)
    chip = chip_model(task, settings.quant, settings.device, settings.seed)
except MemgruError as exc:
    st.error(f"Cannot load the {task} model: {exc}")
    st.stop()
(st.warning if origin.startswith("random") else st.caption)(f"Weights: {origin}.")

layers = crossbar_layers(chip)
left, middle, right = st.columns(3)
layer_name = choose("Layer", list(layers), key="xb_layer", container=left,
                    format_func=lambda n: f"{n} ({type(layers[n]).__name__})")
with st.spinner("Programming the layer…"):
    try:
        matrices = layers[layer_name].programmed()
    except MemgruError as exc:
        st.error(f"This setting cannot be programmed: {exc}")
        st.stop()
matrix = choose("Matrix", list(matrices), key="xb_matrix", container=middle, format_func=matrix_label)
pm = matrices[matrix]
is_gru = matrix != "weight"
gate_choice = choose("Gate", list(GATE_LABELS), key="xb_gate", container=right, format_func=GATE_LABELS.get,
                     disabled=not is_gru, help="Rows of W_ih / W_hh in PyTorch's order r, z, n.")
gate = gate_choice if is_gru and gate_choice in GATES else None

left, right = st.columns(2)
slice_index = 0
if pm.cmap.n_slices > 1:
    slice_index = choose("Bit slice", list(range(pm.cmap.n_slices)), key="xb_slice", container=left,
                         help=f"{settings.quant.weight_bits}-bit weights need more states than one device has: "
                              f"each weight spans {pm.cmap.n_slices} device pairs (base {pm.cmap.base} digits).")
tiles = {WHOLE: None} | {f"array · row tile {r}, column tile {c}": (r, c) for r, c in tiles_in(pm, gate)}
tile = tiles[choose("Physical array", list(tiles), key="xb_tile", container=right,
                    help=f"Arrays are {pm.device.rows} rows × {pm.device.cols} columns "
                         f"({pm.device.outputs_per_array} outputs).")]
block = crossbar_block(pm, gate, slice_index, tile)

summary = matrix_summary(task, settings.quant, settings.device, settings.seed, layer_name, matrix)
cols = st.columns(5)
cols[0].metric("Matrix (outputs × rows)", f"{summary['out_features']} × {summary['rows']}")
cols[1].metric("Arrays", summary["arrays"], help="slices × row tiles × column tiles")
cols[2].metric("Devices", f"{summary['devices']:,}")
cols[3].metric("Stuck devices", summary["stuck_hrs"] + summary["stuck_lrs"],
               help=f"{summary['stuck_hrs']} at HRS (g_min), {summary['stuck_lrs']} at LRS (g_max)")
rel = summary["weight_error_rms"] / summary["weight_rms"] if summary["weight_rms"] else 0.0
cols[4].metric("Weight error (rms)", f"{100 * rel:.2f} %", help="Effective vs quantized target weights, "
               "relative to the rms weight.")

name = f"{task}_{layer_name}_{matrix}_{gate or 'all'}"
table = lambda: block_table(block)  # noqa: E731 (built only when a CSV download is clicked)
target = st.toggle("Show target conductances (before variation, faults and drift)", key="xb_target")
left, right = st.columns(2)
with left:
    show_figure(conductance_heatmap(block, "pos", target), table, f"{name}_gpos", "xb_gpos")
with right:
    show_figure(conductance_heatmap(block, "neg", target), table, f"{name}_gneg", "xb_gneg")
left, right = st.columns(2)
with left:
    show_figure(weight_heatmap(block), table, f"{name}_weight", "xb_weight")
with right:
    show_figure(stuck_map(block), table, f"{name}_stuck", "xb_stuck")
show_figure(conductance_histogram(block), table, f"{name}_levels", "xb_levels")

st.subheader("Programming map")
st.caption(f"The whole matrix `{layer_name}.{matrix}` as programmed with this setting: one row per device "
           "pair (CSV) or the arrays with stuck masks, scales and effective weights (NPZ), as written by "
           "`python -m memgru crossbar --export`.")


def npz_bytes() -> bytes:
    """The NPZ export of the whole matrix, in memory."""
    buffer = io.BytesIO()
    np.savez_compressed(buffer, **pm.export_arrays())
    return buffer.getvalue()


def map_csv() -> str:
    """The per-device-pair CSV of the whole matrix."""
    return conductance_table(pm).to_csv(index=False, float_format="%.5g")


left, right = st.columns(2)
left.download_button("Programming map (CSV)", data=map_csv,
                     file_name=f"{task}_{layer_name}_{matrix}.csv", mime="text/csv", key="xb_map_csv",
                     on_click="ignore")
right.download_button("Arrays (NPZ)", data=npz_bytes, file_name=f"{task}_{layer_name}_{matrix}.npz",
                      mime="application/octet-stream", key="xb_map_npz", on_click="ignore")
