"""Plotly figure builders for the dashboard and reports: data in, `go.Figure` out (no Streamlit here).

Three groups: crossbar views of one programmed matrix (`crossbar_block` picks the part to show,
then heatmaps, histogram and stuck-device map), metric curves from sweep results (`curve_table`,
`metric_curves`), and training curves from the JSON-lines logs (`training_curves`). Every figure's
data is also available as a DataFrame (`block_table`, `curve_table`, the log itself) for CSV export.

Example:
    >>> import torch
    >>> from memgru.config import QuantConfig, DeviceConfig
    >>> from memgru.crossbar import program
    >>> pm = program(torch.randn(12, 5), None, QuantConfig(weight_bits=4), DeviceConfig.rram_1t1r(), seed=0)
    >>> block = crossbar_block(pm, gate="z")           # rows 4..7 of a GRU-style [3H, in] matrix
    >>> block.g_pos.shape, block.out_offset
    ((4, 5), 4)
    >>> conductance_heatmap(block, "pos").data[0].type
    'heatmap'
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from memgru.config import FLOAT_BITS
from memgru.crossbar import STUCK_HRS, STUCK_LRS, ProgrammedMatrix, conductance_to_weight
from memgru.errors import MemgruError
from memgru.layers import GATES

MAX_HEATMAP_CELLS = 256 * 256
"""Heatmaps larger than this are shown with a row/column stride (the page says so); tiles are smaller."""
METRIC_LABELS = {"accuracy": "accuracy (%)", "rmse": "RMSE (%)"}
"""Axis titles of the task metrics."""
AXIS_LABELS = {"weight_bits": "weight bits", "sigma": "programming variation σ (fraction of G window)",
               "snr_db": "input SNR (dB)"}
"""Axis titles of the swept settings."""
OUTCOME_COLUMNS = ("accuracy", "rmse", "seed", "n", "seconds")
"""Result columns that are measurements or repetitions, not settings."""


@dataclass(frozen=True)
class CrossbarBlock:
    """A rectangular part of one programmed matrix (a gate, a physical array or the whole matrix).

    Arrays are [outputs, rows] of one bit slice; conductances in µS. `out_offset` / `row_offset` give
    the position of element [0, 0] in the full matrix, so axes show real column-pair and row numbers.
    """

    g_pos: np.ndarray
    """Programmed G+ [µS]."""
    g_neg: np.ndarray
    """Programmed G− [µS]."""
    target_pos: np.ndarray
    """Target G+ before non-idealities [µS]."""
    target_neg: np.ndarray
    """Target G− before non-idealities [µS]."""
    stuck_pos: np.ndarray
    """Stuck codes of the G+ devices (0 fine, 1 stuck at HRS, 2 stuck at LRS)."""
    stuck_neg: np.ndarray
    """Stuck codes of the G− devices."""
    weight: np.ndarray
    """Effective weights the chip applies (all slices combined, after variation)."""
    target_weight: np.ndarray
    """Quantized weights the conductance targets encode."""
    out_offset: int
    """First output (column pair) of the block in the full matrix."""
    row_offset: int
    """First row (input) of the block in the full matrix."""
    tile_rows: int
    """Rows of one physical array (tile boundaries are drawn at multiples of it)."""
    tile_outputs: int
    """Outputs (column pairs) of one physical array."""
    g_min: float
    """Conductance window floor [µS]."""
    g_max: float
    """Conductance window ceiling [µS]."""
    title: str
    """What the block is, e.g. 'gate z · slice 0'."""


def gate_range(pm: ProgrammedMatrix, gate: str | None) -> tuple[int, int]:
    """Output range [start, stop) of a GRU gate (rows r, z, n of weight_ih / weight_hh); all outputs for None."""
    if gate is None:
        return 0, pm.out_features
    if gate not in GATES:
        raise MemgruError(f"unknown gate {gate!r}; choose from {', '.join(GATES)}")
    if pm.out_features % len(GATES):
        raise MemgruError(f"a matrix with {pm.out_features} outputs is not a GRU gate matrix (3 x hidden)")
    hidden = pm.out_features // len(GATES)
    k = GATES.index(gate)
    return k * hidden, (k + 1) * hidden


def tiles_in(pm: ProgrammedMatrix, gate: str | None = None) -> list[tuple[int, int]]:
    """(row tile, column tile) of every physical array holding part of `gate` (or of the matrix)."""
    start, stop = gate_range(pm, gate)
    outs = pm.device.outputs_per_array
    cols = range(start // outs, math.ceil(stop / outs))
    return [(r, c) for r in range(pm.n_row_tiles) for c in cols]


def crossbar_block(
    pm: ProgrammedMatrix, gate: str | None = None, slice_index: int = 0, tile: tuple[int, int] | None = None
) -> CrossbarBlock:
    """The part of `pm` to show: a gate's outputs (or all), one bit slice, optionally one physical array.

    `tile` = (row tile, column tile) from `tiles_in(pm, gate)`; the block is then the intersection of
    that array with the gate.
    """
    n_slices = pm.cmap.n_slices
    if not 0 <= slice_index < n_slices:
        raise MemgruError(f"slice {slice_index} does not exist; this matrix has {n_slices} slice(s)")
    start, stop = gate_range(pm, gate)
    row_start, row_stop = 0, pm.rows_total
    if tile is not None:
        if tuple(tile) not in tiles_in(pm, gate):
            raise MemgruError(f"tile {tuple(tile)} does not hold part of {'gate ' + gate if gate else 'this matrix'}")
        r, c = tile
        outs, rows = pm.device.outputs_per_array, pm.device.rows
        start, stop = max(start, c * outs), min(stop, (c + 1) * outs)
        row_start, row_stop = r * rows, min(pm.rows_total, (r + 1) * rows)
    part = (slice_index, slice(start, stop), slice(row_start, row_stop))
    full = (slice(start, stop), slice(row_start, row_stop))
    title = " · ".join(
        [f"gate {gate}" if gate else "all outputs"]
        + ([f"slice {slice_index} of {n_slices}"] if n_slices > 1 else [])
        + ([f"array (row tile {tile[0]}, column tile {tile[1]})"] if tile is not None else [])
    )
    return CrossbarBlock(
        g_pos=pm.chip.g_pos[part].numpy(), g_neg=pm.chip.g_neg[part].numpy(),
        target_pos=pm.cmap.g_pos[part].numpy(), target_neg=pm.cmap.g_neg[part].numpy(),
        stuck_pos=pm.chip.stuck_pos[part].numpy(), stuck_neg=pm.chip.stuck_neg[part].numpy(),
        weight=pm.effective_weight()[full].numpy(), target_weight=conductance_to_weight(pm.cmap)[full].numpy(),
        out_offset=start, row_offset=row_start, tile_rows=pm.device.rows,
        tile_outputs=pm.device.outputs_per_array, g_min=pm.device.g_min, g_max=pm.device.g_max, title=title,
    )


def heatmap_stride(shape: tuple[int, int], max_cells: int = MAX_HEATMAP_CELLS) -> int:
    """Row/column stride that keeps a [a, b] heatmap under `max_cells` cells (1 = full resolution)."""
    cells = shape[0] * shape[1]
    return 1 if cells <= max_cells else math.ceil(math.sqrt(cells / max_cells))


def _matrix_heatmap(
    block: CrossbarBlock, z: np.ndarray, title: str, colorbar: str, colorscale: str,
    zmin: float, zmax: float, zmid: float | None = None,
) -> go.Figure:
    """A [outputs, rows] array drawn like the physical array: rows (inputs) down, column pairs across,
    with dotted lines at tile boundaries."""
    k = heatmap_stride(z.shape)
    outs = block.out_offset + np.arange(z.shape[0])[::k]
    rows = block.row_offset + np.arange(z.shape[1])[::k]
    if k > 1:
        title += f" (1 in {k} rows and columns shown)"
    fig = go.Figure(go.Heatmap(
        z=np.round(z[::k, ::k].T, 4), x=outs, y=rows, colorscale=colorscale, zmin=zmin, zmax=zmax, zmid=zmid,
        colorbar={"title": {"text": colorbar}},
        hovertemplate="column pair %{x}<br>row %{y}<br>%{z:.3f} " + colorbar + "<extra></extra>",
    ))
    x_lo, x_hi = block.out_offset, block.out_offset + z.shape[0]
    y_lo, y_hi = block.row_offset, block.row_offset + z.shape[1]
    line = {"color": "black", "dash": "dot", "width": 1}
    # One layout update with all boundaries (add_vline per line is slow: ~25 ms each).
    shapes = [{"type": "line", "xref": "x", "yref": "paper", "x0": x - 0.5, "x1": x - 0.5, "y0": 0, "y1": 1,
               "line": line}
              for x in range((x_lo // block.tile_outputs + 1) * block.tile_outputs, x_hi, block.tile_outputs)]
    shapes += [{"type": "line", "xref": "paper", "yref": "y", "x0": 0, "x1": 1, "y0": y - 0.5, "y1": y - 0.5,
                "line": line}
               for y in range((y_lo // block.tile_rows + 1) * block.tile_rows, y_hi, block.tile_rows)]
    fig.update_layout(shapes=shapes, title=title, xaxis_title="column pair (output)", yaxis_title="row (input)",
                      margin={"t": 50, "b": 40, "l": 50, "r": 10})
    fig.update_yaxes(autorange="reversed")
    return fig


def conductance_heatmap(block: CrossbarBlock, side: str, target: bool = False) -> go.Figure:
    """Heatmap of G+ (`side='pos'`) or G− (`'neg'`) in µS, programmed or (`target=True`) as intended."""
    if side not in ("pos", "neg"):
        raise MemgruError(f"side must be 'pos' or 'neg', got {side!r}")
    z = getattr(block, f"{'target' if target else 'g'}_{side}")
    name = f"{'target ' if target else ''}G{'+' if side == 'pos' else '−'} · {block.title}"
    return _matrix_heatmap(block, z, name, "µS", "Viridis", block.g_min, block.g_max)


def weight_heatmap(block: CrossbarBlock) -> go.Figure:
    """Heatmap of the effective weights the chip applies (diverging colours centred on 0)."""
    peak = float(np.abs(block.weight).max()) or 1.0
    return _matrix_heatmap(block, block.weight, f"effective weight · {block.title}", "weight", "RdBu_r",
                           -peak, peak, 0.0)


def stuck_map(block: CrossbarBlock) -> go.Figure:
    """Where the stuck devices are: one marker per stuck G+ / G− device (exact, whatever the block size)."""
    fig = go.Figure()
    styles = {(STUCK_HRS, "pos"): ("G+ stuck at HRS", "circle-open", "#1f77b4"),
              (STUCK_HRS, "neg"): ("G− stuck at HRS", "square-open", "#17becf"),
              (STUCK_LRS, "pos"): ("G+ stuck at LRS", "circle", "#d62728"),
              (STUCK_LRS, "neg"): ("G− stuck at LRS", "square", "#ff7f0e")}
    for (code, side), (name, symbol, color) in styles.items():
        o, r = np.nonzero(getattr(block, f"stuck_{side}") == code)
        fig.add_trace(go.Scatter(
            x=o + block.out_offset, y=r + block.row_offset, mode="markers", name=f"{name} ({len(o)})",
            marker={"symbol": symbol, "color": color, "size": 6},
            hovertemplate="column pair %{x}<br>row %{y}<extra>" + name + "</extra>",
        ))
    out_hi = block.out_offset + block.g_pos.shape[0] - 0.5
    row_hi = block.row_offset + block.g_pos.shape[1] - 0.5
    fig.update_layout(title=f"stuck devices · {block.title}", xaxis_title="column pair (output)",
                      yaxis_title="row (input)", margin={"t": 50, "b": 40, "l": 50, "r": 10})
    fig.update_xaxes(range=[block.out_offset - 0.5, out_hi])
    fig.update_yaxes(range=[row_hi, block.row_offset - 0.5])
    return fig


def conductance_histogram(block: CrossbarBlock, bins: int = 120) -> go.Figure:
    """Histogram of conductance values, target levels against programmed values (G+ and G− together).

    The bins span the window [g_min, g_max] and any value outside it (drift lowers conductances below
    g_min), so every device is counted.
    """
    values = {"target": np.concatenate([block.target_pos.ravel(), block.target_neg.ravel()]),
              "programmed": np.concatenate([block.g_pos.ravel(), block.g_neg.ravel()])}
    low = min(block.g_min, *(float(v.min()) for v in values.values()))
    high = max(block.g_max, *(float(v.max()) for v in values.values()))
    edges = np.linspace(low, high, bins + 1)
    centres = (edges[:-1] + edges[1:]) / 2
    fig = go.Figure()
    for name, v in values.items():
        counts, _ = np.histogram(v, bins=edges)
        fig.add_trace(go.Bar(x=centres, y=counts, name=name, opacity=0.6, width=float(edges[1] - edges[0])))
    fig.update_layout(title=f"conductance levels · {block.title}", xaxis_title="conductance (µS)",
                      yaxis_title="devices", yaxis_type="log", barmode="overlay",
                      margin={"t": 50, "b": 40, "l": 50, "r": 10})
    return fig


def block_table(block: CrossbarBlock) -> pd.DataFrame:
    """One row per device pair of the block: position, target and programmed G± (µS), stuck codes, weights."""
    o, r = np.meshgrid(np.arange(block.g_pos.shape[0]), np.arange(block.g_pos.shape[1]), indexing="ij")
    return pd.DataFrame({
        "output": (o + block.out_offset).ravel(), "row": (r + block.row_offset).ravel(),
        "target_g_pos_uS": block.target_pos.ravel(), "target_g_neg_uS": block.target_neg.ravel(),
        "g_pos_uS": block.g_pos.ravel(), "g_neg_uS": block.g_neg.ravel(),
        "stuck_pos": block.stuck_pos.ravel(), "stuck_neg": block.stuck_neg.ravel(),
        "target_weight": block.target_weight.ravel(), "effective_weight": block.weight.ravel(),
    })


def metric_column(rows: pd.DataFrame) -> str:
    """The metric a results table holds: `accuracy` or `rmse` (a clear error when it has neither)."""
    names = [c for c in ("accuracy", "rmse") if c in rows.columns]
    if len(names) != 1:
        raise MemgruError("a results table needs exactly one metric column, 'accuracy' or 'rmse'")
    return names[0]


def curve_table(rows: pd.DataFrame, x: str) -> pd.DataFrame:
    """Mean, std and seed count of the metric per setting, one curve per combination of the other settings.

    Settings are every column except the metric and the repetition columns (`OUTCOME_COLUMNS`); only
    those that vary become the `series` label. For `x='weight_bits'` activation bits, gate-output bits and
    the activation-range percentile are not series keys, so the float reference (weight bits 32, float
    activations) stays on its curve.
    """
    if x not in AXIS_LABELS:
        raise MemgruError(f"unknown axis {x!r}; choose from {', '.join(AXIS_LABELS)}")
    if x not in rows.columns:
        raise MemgruError(f"the results have no {x!r} column")
    value = metric_column(rows)
    data = rows.dropna(subset=[x, value]).copy()
    if data.empty:
        raise MemgruError(f"no results with a value for {AXIS_LABELS[x]}")
    keys = [c for c in data.columns if c not in OUTCOME_COLUMNS and c != x]
    if x == "weight_bits":  # activation settings follow the weights' precision (float rows have none)
        keys = [k for k in keys if k not in ("act_bits", "gate_bits", "act_percentile")]
    data[keys] = data[keys].astype(object).where(data[keys].notna(), "off")
    varying = [k for k in keys if data[k].nunique() > 1]
    grouped = data.groupby([*keys, x], sort=True)[value].agg(["mean", "std", "count"]).reset_index()
    grouped["series"] = grouped[varying].astype(str).agg(lambda r: ", ".join(
        f"{k}={v}" for k, v in zip(varying, r, strict=True)), axis=1) if varying else "all"
    grouped = grouped.rename(columns={"mean": f"{value}_mean", "std": f"{value}_std", "count": "seeds"})
    return grouped.sort_values(["series", x]).reset_index(drop=True)


def bits_label(bits: float) -> str:
    """Axis label of a bit width: '6' or 'float' for 32."""
    return "float" if bits >= FLOAT_BITS else str(int(bits))


def metric_curves(table: pd.DataFrame, x: str, current: float | None = None, title: str = "") -> go.Figure:
    """Metric vs `x` from `curve_table`, one line per series with ±1 std over seeds, and the
    user's current setting `current` marked by a vertical line (None: not on this axis)."""
    value = next(c[: -len("_mean")] for c in table.columns if c.endswith("_mean"))
    fig = go.Figure()
    for name, part in table.groupby("series", sort=False):
        xs = [bits_label(b) for b in part[x]] if x == "weight_bits" else part[x]
        fig.add_trace(go.Scatter(
            x=xs, y=part[f"{value}_mean"], name=str(name), mode="lines+markers",
            error_y={"type": "data", "array": part[f"{value}_std"].fillna(0), "visible": True},
            customdata=part["seeds"],
            hovertemplate="%{x}: %{y:.2f} (%{customdata} seeds)<extra>%{fullData.name}</extra>",
        ))
    if x == "weight_bits":
        order = sorted(table[x].unique())
        fig.update_xaxes(type="category", categoryorder="array", categoryarray=[bits_label(b) for b in order])
    if current is not None:
        marker = bits_label(current) if x == "weight_bits" else current
        fig.add_shape(type="line", xref="x", yref="paper", x0=marker, x1=marker, y0=0, y1=1,
                      line={"color": "crimson", "dash": "dash"})
        fig.add_annotation(x=marker, y=1, xref="x", yref="paper", text="your setting", showarrow=False,
                           yanchor="bottom", font={"color": "crimson"})
    fig.update_layout(title=title, xaxis_title=AXIS_LABELS[x], yaxis_title=METRIC_LABELS[value],
                      margin={"t": 60, "b": 40, "l": 50, "r": 10}, legend={"title": {"text": ""}})
    return fig


LOG_COLUMNS = ("epoch", "train_loss", "val_loss", "val_metric")
"""Fields every training-log line must have (written by `memgru.train.train_model`)."""


def training_curves(logs: pd.DataFrame, metric: str, title: str = "") -> go.Figure:
    """Loss (train solid, validation dashed) and validation metric per epoch, one colour per run.

    `logs` has the `LOG_COLUMNS` plus `run` (e.g. 'float', 'noise'); `metric` is 'accuracy' or 'rmse'.
    """
    missing = [c for c in (*LOG_COLUMNS, "run") if c not in logs.columns]
    if missing:
        raise MemgruError(f"training log lacks column(s): {', '.join(missing)}")
    fig = make_subplots(rows=1, cols=2, subplot_titles=("loss", f"validation {METRIC_LABELS[metric]}"))
    colors = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd"]
    for i, (run, part) in enumerate(logs.groupby("run", sort=False)):
        color = colors[i % len(colors)]
        for col, dash, label in (("train_loss", "solid", "train"), ("val_loss", "dash", "val")):
            fig.add_trace(go.Scatter(x=part["epoch"], y=part[col], name=f"{run} · {label} loss", mode="lines",
                                     line={"color": color, "dash": dash}), row=1, col=1)
        fig.add_trace(go.Scatter(x=part["epoch"], y=part["val_metric"], name=f"{run} · val {metric}",
                                 mode="lines+markers", line={"color": color}), row=1, col=2)
        if _selected_under_noise(part):
            fig.add_trace(go.Scatter(x=part["epoch"], y=part["val_metric_noisy"], mode="lines+markers",
                                     name=f"{run} · val {metric} under weight noise", line={"color": color,
                                     "dash": "dot"}), row=1, col=2)
    fig.update_xaxes(title_text="epoch")
    fig.update_layout(title=title, margin={"t": 70, "b": 40, "l": 50, "r": 10})
    return fig


def _selected_under_noise(run_log: pd.DataFrame) -> bool:
    """True when one run's log recorded `val_metric_noisy` (a noise run that chose its epoch under weight noise)."""
    return "val_metric_noisy" in run_log and bool(run_log["val_metric_noisy"].notna().any())


def kept_epochs(logs: pd.DataFrame, metric: str) -> pd.DataFrame:
    """The epoch each run kept (one row per run of `logs`, as `training_curves` takes them): the best
    `val_metric_noisy` where the run recorded it (a noise run selected under weight noise), else the best
    `val_metric`; `selected_on` says which."""
    rows = []
    for _, part in logs.groupby("run", sort=False):
        column = "val_metric_noisy" if _selected_under_noise(part) else "val_metric"
        values = pd.to_numeric(part[column], errors="coerce")
        row = part.loc[values.idxmax() if metric == "accuracy" else values.idxmin()].copy()
        row["selected_on"] = "validation under weight noise" if column == "val_metric_noisy" else "validation"
        rows.append(row)
    return pd.DataFrame(rows).dropna(axis=1, how="all")


# ------------------------------------------------------------------------------------- task pages

RUN_COLORS = {"float": "#1f77b4", "crossbar": "#d62728", "truth": "#2b2b2b"}
"""Colours of the float model, the crossbar model and the ground truth on the task pages."""
EARTH_RADIUS_KM = 6371.0
"""Mean Earth radius used for local track coordinates [km]."""
MAX_WAVEFORM_POINTS = 4000
"""A waveform longer than this is drawn as its min/max envelope over that many columns."""


def waveform_figure(x: np.ndarray, sample_rate: int, title: str = "waveform") -> go.Figure:
    """A mono signal against time [s]; long signals as a min/max envelope (`MAX_WAVEFORM_POINTS` columns),
    so a 4-s clip at 22.05 kHz stays a light figure without losing its peaks."""
    x = np.asarray(x, dtype=np.float32)
    if len(x) > MAX_WAVEFORM_POINTS:
        k = math.ceil(len(x) / (MAX_WAVEFORM_POINTS // 2))
        cols = np.pad(x, (0, -len(x) % k)).reshape(-1, k)
        t = np.repeat(np.arange(len(cols)) * k / sample_rate, 2)
        y = np.stack([cols.min(1), cols.max(1)], axis=1).ravel()
    else:
        t, y = np.arange(len(x)) / sample_rate, x
    fig = go.Figure(go.Scatter(x=t, y=y, mode="lines", line={"width": 1, "color": RUN_COLORS["float"]},
                               hovertemplate="%{x:.3f} s: %{y:.3f}<extra></extra>"))
    fig.update_layout(title=title, xaxis_title="time (s)", yaxis_title="amplitude", height=260,
                      margin={"t": 50, "b": 40, "l": 50, "r": 10})
    return fig


def spectrogram_figure(db: np.ndarray, hop_s: float, fmax_hz: float, start_s: float = 0.0,
                       title: str = "log-mel spectrogram") -> go.Figure:
    """Heatmap of log-mel energies `db` [frames, mel bands] (dB) against time [s] and mel band."""
    t = start_s + np.arange(db.shape[0]) * hop_s
    fig = go.Figure(go.Heatmap(
        z=np.round(db.T, 2), x=np.round(t, 4), y=np.arange(db.shape[1]), colorscale="Magma",
        colorbar={"title": {"text": "dB"}}, hovertemplate="%{x:.2f} s, band %{y}: %{z:.1f} dB<extra></extra>",
    ))
    fig.update_layout(title=f"{title} (bands up to {fmax_hz / 1000:.1f} kHz)", xaxis_title="time (s)",
                      yaxis_title="mel band", height=300, margin={"t": 50, "b": 40, "l": 50, "r": 10})
    return fig


def probability_table(probabilities: dict[str, dict[str, float]]) -> pd.DataFrame:
    """Class probabilities of several models, e.g. {'float': {label: p}, 'crossbar': {...}}, one row per class."""
    models = list(probabilities)
    labels = list(probabilities[models[0]])
    return pd.DataFrame({"class": labels, **{m: [probabilities[m][lab] for lab in labels] for m in models}})


def probability_bars(table: pd.DataFrame, title: str = "class probabilities") -> go.Figure:
    """Horizontal bars of `probability_table` (in %), one colour per model, classes top to bottom."""
    fig = go.Figure()
    for model in table.columns[1:]:
        fig.add_trace(go.Bar(
            y=table["class"], x=100 * table[model], name=model, orientation="h",
            marker_color=RUN_COLORS.get(model), hovertemplate="%{y}: %{x:.1f} %<extra>" + model + "</extra>",
        ))
    fig.update_layout(title=title, xaxis_title="probability (%)", xaxis_range=[0, 100], barmode="group",
                      height=120 + 45 * len(table), margin={"t": 50, "b": 40, "l": 10, "r": 10})
    fig.update_yaxes(autorange="reversed")
    return fig


def window_scores_table(start_s: Sequence[float], scores: dict[str, Sequence[float]]) -> pd.DataFrame:
    """Per-window scores of several models against the window start in minutes from the first window:
    columns `window`, `start_min`, one per model (P(false) for the trajectory task)."""
    start = np.asarray(start_s, dtype=float)
    origin = start.min() if len(start) else 0.0
    table = pd.DataFrame({"window": np.arange(len(start)), "start_min": (start - origin) / 60.0})
    for model, values in scores.items():
        if len(values) != len(start):
            raise MemgruError(f"{model}: {len(values)} window scores for {len(start)} windows")
        table[model] = np.asarray(values, dtype=float)
    return table


def window_scores_figure(table: pd.DataFrame, threshold: float, title: str = "P(false) per window") -> go.Figure:
    """`window_scores_table` as one line per model (in %) over the window start, with the decision threshold
    dashed: which stretches of a track drove its verdict."""
    fig = go.Figure()
    for model in table.columns[2:]:
        fig.add_trace(go.Scatter(x=table["start_min"], y=100 * table[model], mode="lines+markers", name=model,
                                 marker={"size": 4}, line={"color": RUN_COLORS.get(model)},
                                 hovertemplate="%{x:.1f} min: %{y:.1f} %<extra>" + model + "</extra>"))
    fig.add_hline(y=100 * threshold, line_dash="dash", line_color="#555555",
                  annotation_text=f"threshold {100 * threshold:g} %", annotation_position="top left")
    fig.update_layout(title=title, xaxis_title="window start (min from the first window)",
                      yaxis_title="P(false) (%)", yaxis_range=[0, 100], height=300,
                      margin={"t": 50, "b": 40, "l": 60, "r": 10})
    return fig


def local_track(latitude: np.ndarray, longitude: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """(east, north) in km from the first point, equirectangular about the track's mean latitude
    (metre-level over a few hundred km, which is all a drawing needs)."""
    lat, lon = np.radians(np.asarray(latitude, float)), np.radians(np.asarray(longitude, float))
    dlon = (lon - lon[0] + np.pi) % (2 * np.pi) - np.pi  # across the antimeridian too
    east = EARTH_RADIUS_KM * dlon * np.cos(lat.mean())
    north = EARTH_RADIUS_KM * (lat - lat[0])
    return east, north


ALTITUDE_MIN_SPAN_FT = 1000.0
"""Smallest altitude range (ft, one flight level step) the track figures show, so that a level flight's 25-ft
reporting steps do not fill the axis or the colour scale."""


def altitude_range(altitude_ft: np.ndarray, min_span: float = ALTITUDE_MIN_SPAN_FT) -> tuple[float, float]:
    """(low, high) altitude bounds [ft] around the finite values, widened about their middle to `min_span`."""
    v = np.asarray(altitude_ft, dtype=float)
    v = v[np.isfinite(v)]
    if len(v) == 0:
        return 0.0, min_span
    lo, hi = float(v.min()), float(v.max())
    if hi - lo < min_span:
        mid = 0.5 * (lo + hi)
        lo, hi = mid - 0.5 * min_span, mid + 0.5 * min_span
    return lo, hi


def track_table(reports: pd.DataFrame) -> pd.DataFrame:
    """Reports (time_s, latitude, longitude, altitude, ...) that carry a position, with time from the first
    report [s] and km east/north of the first position."""
    t0 = float(reports["time_s"].iloc[0])
    placed = reports.dropna(subset=["latitude", "longitude"])
    east, north = local_track(placed["latitude"].to_numpy(), placed["longitude"].to_numpy())
    return placed.assign(t_s=placed["time_s"].to_numpy(float) - t0, east_km=east, north_km=north)


def track_figure(table: pd.DataFrame, title: str = "track") -> go.Figure:
    """The track of `track_table` in local coordinates (km east/north of the first report), start and end marked;
    equal axis scales, no map tiles (works offline); colour = altitude over at least `ALTITUDE_MIN_SPAN_FT`."""
    cmin, cmax = altitude_range(table["altitude"].to_numpy())
    fig = go.Figure(go.Scatter(
        x=table["east_km"], y=table["north_km"], mode="lines+markers", name="track",
        marker={"size": 4, "color": table["altitude"], "colorscale": "Viridis", "colorbar": {"title": {"text": "ft"}},
                "cmin": cmin, "cmax": cmax},
        line={"color": "#999999", "width": 1}, customdata=np.stack([table["t_s"], table["altitude"]], axis=1),
        hovertemplate="%{x:.2f} km E, %{y:.2f} km N<br>t = %{customdata[0]:.0f} s, %{customdata[1]:.0f} ft"
                      "<extra></extra>",
    ))
    for i, name, symbol in ((0, "start", "circle-open"), (-1, "end", "x")):
        fig.add_trace(go.Scatter(x=[table["east_km"].iloc[i]], y=[table["north_km"].iloc[i]], mode="markers+text",
                                 name=name, text=[name], textposition="top center",
                                 marker={"symbol": symbol, "size": 12, "color": "black"}))
    fig.update_layout(title=title, xaxis_title="east (km)", yaxis_title="north (km)", showlegend=False,
                      height=420, margin={"t": 50, "b": 40, "l": 50, "r": 10})
    fig.update_yaxes(scaleanchor="x", scaleratio=1)
    return fig


def altitude_figure(table: pd.DataFrame, title: str = "altitude profile") -> go.Figure:
    """Barometric altitude [ft] against time from the first report [s]; at least `ALTITUDE_MIN_SPAN_FT` tall."""
    fig = go.Figure(go.Scatter(x=table["t_s"], y=table["altitude"], mode="lines+markers", marker={"size": 4},
                               hovertemplate="t = %{x:.0f} s: %{y:.0f} ft<extra></extra>"))
    lo, hi = altitude_range(table["altitude"].to_numpy())
    pad = 0.05 * (hi - lo)
    fig.update_layout(title=title, xaxis_title="time from start (s)", yaxis_title="altitude (ft)", height=300,
                      margin={"t": 50, "b": 40, "l": 60, "r": 10})
    fig.update_yaxes(range=[lo - pad, hi + pad])
    return fig


def soc_table(estimates: dict[str, list[float] | np.ndarray], truth_pct: np.ndarray | None = None) -> pd.DataFrame:
    """SOC traces [%] at 1 Hz in one table: time_s, one column per model ('float', 'crossbar') and `truth`."""
    length = len(next(iter(estimates.values())))
    table = pd.DataFrame({"time_s": np.arange(length)})
    for name, values in estimates.items():
        table[name] = np.asarray(values, dtype=float)
    if truth_pct is not None:
        table["truth"] = np.asarray(truth_pct, dtype=float)
    return table


def soc_figure(table: pd.DataFrame, title: str = "state of charge", max_points: int = 5000) -> go.Figure:
    """SOC estimates and truth [%] against time [h] from `soc_table` (every k-th second beyond `max_points`)."""
    k = max(1, math.ceil(len(table) / max_points))
    part = table.iloc[::k]
    fig = go.Figure()
    for name in table.columns[1:]:
        fig.add_trace(go.Scattergl(
            x=part["time_s"] / 3600, y=part[name], mode="lines", name=name,
            line={"color": RUN_COLORS.get(name), "width": 2 if name == "truth" else 1.5,
                  "dash": "dot" if name == "truth" else "solid"},
            hovertemplate="%{x:.3f} h: %{y:.2f} %<extra>" + name + "</extra>",
        ))
    fig.update_layout(title=title, xaxis_title="time (h)", yaxis_title="SOC (%)", height=420,
                      margin={"t": 50, "b": 40, "l": 50, "r": 10})
    return fig


def plan_bits_figure(bits: pd.DataFrame, title: str = "precision per slot") -> go.Figure:
    """Bits per slot of a fusion-quantization plan next to the uniform W6/A8 baseline
    (`bits` = `memgru.fusion.plan_tables(report)["bits"]`); float slots are drawn at 32."""
    fig = go.Figure()
    for column, name in (("uniform_bits", "uniform W6/A8"), ("plan_bits", "plan")):
        fig.add_trace(go.Bar(x=bits["slot"], y=bits[column], name=name,
                             hovertemplate="%{x}: %{y} bits<extra>" + name + "</extra>"))
    fig.update_layout(title=title, barmode="group", xaxis_title="weight matrix / activation point",
                      yaxis_title="bits", margin={"t": 60, "b": 80, "l": 50, "r": 10})
    return fig
