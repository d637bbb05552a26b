"""Quantization & robustness page: task metric vs weight bits, programming variation σ and input SNR."""

import pandas as pd
import streamlit as st

from memgru.config import FLOAT_BITS
from memgru.errors import MemgruError
from memgru.fusion import holdout_sentence, load_report, plan_tables
from memgru.plots import AXIS_LABELS, curve_table, metric_curves, plan_bits_figure
from memgru.tasks.registry import TASK_NAMES, task_spec
from ui.cache import task_model
from ui.controls import BIT_OPTIONS, FLOAT, choose, sidebar
from ui.figures import show_figure
from ui.sources import (
    curve_results_files,
    live_inputs_missing,
    parse_results,
    read_results,
    recompute,
    results_files,
    results_root,
)

FOLDER, UPLOAD = "precomputed results", "upload a results CSV"
LIVE_SIGMAS = (0.0, 0.01, 0.02, 0.05, 0.1)  # σ grid of a live σ sweep
LIVE_SNRS = (None, 40, 30, 20, 10, 5, 0)  # input-SNR grid of a live SNR sweep [dB] (None = clean)


def current_value(axis: str) -> float | None:
    """The sidebar's setting on `axis` (None when it has no point there, e.g. SNR off)."""
    return {"weight_bits": settings.quant.weight_bits, "sigma": settings.sigma, "snr_db": settings.snr_db}[axis]


def show_curves(rows: pd.DataFrame, name: str, key: str) -> None:
    """Axis choice and the metric curve of `rows` with the user's setting marked."""
    present = [a for a in AXIS_LABELS if a in rows.columns and rows[a].notna().any()]
    axes = [a for a in present if rows[a].nunique() > 1] or present
    if not axes:
        st.error("These results have no values for weight bits, σ or input SNR.")
        return
    axis = choose("Horizontal axis", axes, key=f"{key}_axis", format_func=AXIS_LABELS.get)
    try:
        table = curve_table(rows, axis)
    except MemgruError as exc:
        st.error(str(exc))
        return
    fig = metric_curves(table, axis, current_value(axis), title=f"{task}: {AXIS_LABELS[axis]}")
    show_figure(fig, table, f"{name}_{axis}", key)


st.set_page_config(page_title="memgru · quantization", layout="wide")
settings = sidebar()
st.title("Quantization and robustness")
st.caption("Accuracy (or RMSE) of a task model against weight bits, programming variation σ and input SNR; "
           "the dashed line marks the sidebar's setting. Points are means over device seeds, bars ±1 std.")

st.session_state.setdefault("q_task", next((t for t in TASK_NAMES if results_files(t)), TASK_NAMES[0]))
task = choose("Task", TASK_NAMES, key="q_task")
metric = task_spec(task).metric
source = st.radio("Source", (FOLDER, UPLOAD), key="q_source", horizontal=True)

rows = None
if source == FOLDER:
    files, tables = curve_results_files(task)
    if tables:
        st.caption("Per-case tables, in the model card rather than as curves: "
                   + ", ".join(f"`{t.name}`" for t in tables) + ".")
    if not files:
        st.info(f"No precomputed results for {task} yet in {results_root()}: run "
                f"`python -m memgru evaluate --task {task} --out {results_root() / (task + '_bits.csv')}` "
                "(or the experiment commands), or upload a results CSV, or recompute live below.")
    else:
        chosen = st.multiselect("Results files", [f.name for f in files], default=[f.name for f in files],
                                key=f"q_files_{task}")
        parts = []
        for path in (f for f in files if f.name in chosen):
            try:
                parts.append(read_results(path).assign(file=path.stem))
            except MemgruError as exc:
                st.error(f"{exc} (file skipped)")
        rows = pd.concat(parts, ignore_index=True) if parts else None
else:
    upload = st.file_uploader("Results CSV (columns weight_bits / sigma / snr_db, seed, accuracy or rmse)",
                              type=["csv"], key="q_upload")
    if upload is not None:
        try:
            rows = parse_results(upload.getvalue().decode("utf-8"), upload.name)
        except UnicodeDecodeError:
            st.error(f"{upload.name} is not a UTF-8 text file.")
        except MemgruError as exc:
            st.error(str(exc))

if rows is not None:
    if metric not in rows.columns:
        st.warning(f"These results report {', '.join(c for c in ('accuracy', 'rmse') if c in rows)}, "
                   f"while the {task} task reports {metric}: are they from another task?")
    show_curves(rows, f"{task}_results", "q_results")

st.subheader("Fusion quantization plan")
plan_path = results_root() / f"plan_{task}.json"
if not plan_path.is_file():
    st.info(f"No plan for {task} yet: run `python -m memgru plan --task {task}` (writes {plan_path}).")
else:
    try:
        report = load_report(plan_path)
        tables = plan_tables(report)
    except (MemgruError, KeyError, TypeError) as exc:
        st.error(f"Cannot show {plan_path.name}: {exc}")
    else:
        unit = "accuracy" if report["higher_is_better"] else "RMSE"
        st.caption(f"Precision per weight matrix and activation point chosen within {report['tolerance']:.2f} "
                   f"{unit} points of float on validation, under the device limits in the report "
                   f"(`python -m memgru plan --task {task}`), next to the paper's uniform 6-bit weights. "
                   + holdout_sentence(report.get("holdout")))
        show_figure(plan_bits_figure(tables["bits"], f"{task}: plan vs uniform W6/A8"), tables["bits"],
                    f"{task}_plan_bits", "q_plan")
        left, right = st.columns(2)
        left.dataframe(tables["cost"], hide_index=True, key="q_plan_cost")
        right.dataframe(tables["metrics"], hide_index=True, key="q_plan_metrics")

st.subheader("Live recomputation on the test split")
missing = live_inputs_missing(task)
if missing:
    st.info("Live recomputation needs " + "; ".join(missing) + ".")
    st.stop()

st.caption(f"Programs the {task} model with the sidebar's preset, activation bits and device seeds, calibrates "
           "activation and ADC ranges on the checkpoint's calibration inputs and measures the evaluation sets, "
           "as `python -m memgru evaluate` does; the swept setting replaces the sidebar's.")
left, middle, right = st.columns(3)
axis = left.radio("Sweep", tuple(AXIS_LABELS), key="q_live_sweep", format_func=AXIS_LABELS.get)
grids = {
    "weight_bits": middle.multiselect("Weight bits", BIT_OPTIONS, default=[2, 4, 6, 8, FLOAT], key="q_live_bits",
                                      disabled=axis != "weight_bits"),
    "sigma": LIVE_SIGMAS,
    "snr_db": LIVE_SNRS,
}
middle.caption(f"σ grid: {', '.join(map(str, LIVE_SIGMAS))}; SNR grid: clean, "
               f"{', '.join(str(v) for v in LIVE_SNRS[1:])} dB.")
seeds = right.number_input("Device seeds", 1, 10, 2, key="q_live_seeds")
limit = right.number_input("Sequences per evaluation set (at most)", 1, 100_000, 512, step=16, key="q_live_limit")
if st.button("Recompute", key="q_live_run", type="primary"):
    grid = [FLOAT_BITS if v == FLOAT else v for v in grids[axis]]
    if not grid:
        st.error("Pick at least one weight bit width.")
        st.stop()
    bar = st.progress(0.0, text="Recomputing…")
    try:
        model, _ = task_model(task)
        live = recompute(task, model, axis, grid, weight_bits=settings.quant.weight_bits,
                         act_bits=settings.quant.act_bits, gate_bits=settings.quant.gate_bits,
                         sigma=settings.sigma, snr_db=settings.snr_db,
                         seeds=range(settings.seed, settings.seed + int(seeds)), device=settings.device,
                         limit=int(limit), progress=lambda f: bar.progress(f, text=f"Recomputing… {100 * f:.0f} %"))
    except MemgruError as exc:
        st.error(f"Cannot recompute: {exc}")
        st.stop()
    bar.empty()
    st.session_state["q_live_rows"] = (task, live)

stored = st.session_state.get("q_live_rows")
if stored and stored[0] == task:
    live = stored[1]
    st.caption(f"{len(live)} settings × sets, {int(live['n'].sum())} sequences evaluated in "
               f"{live['seconds'].sum():.1f} s.")
    show_curves(live, f"{task}_live", "q_live")
