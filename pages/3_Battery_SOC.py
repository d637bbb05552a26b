"""Battery SOC page: state-of-charge estimate over a whole drive cycle, float vs crossbar, against the truth."""

import re

import streamlit as st

from memgru.errors import MemgruError
from memgru.plots import soc_figure, soc_table
from ui.cache import predictions, task_page
from ui.figures import show_figure
from ui.inputs import choose_input, read_or_stop


def sample_label(name: str) -> str:
    """'FUDS_25C.csv' -> 'FUDS drive cycle at 25 °C ambient'."""
    match = re.fullmatch(r"([A-Za-z0-9]+)_(-?\d+)C\.csv", name)
    return f"{match[1]} drive cycle at {match[2]} °C ambient" if match else name


settings, ckpt, config = task_page(
    "soc", "SOC", "battery SOC", "Battery state of charge",
    "A GRU reads a 1 Hz trace of current, voltage and temperature and estimates the state of charge at "
    "every second of a whole drive cycle. The bundled traces are the held-out FUDS test recordings, with "
    "the true SOC; an uploaded CSV needs `time_s`, `current_a` (+ = discharge), `voltage_v`, "
    "`temperature_c` and optionally `soc`.")

item = choose_input("soc", ["csv"], "soc", format_sample=sample_label,
                    upload_help="1 Hz or faster (resampled to 1 Hz); SOC in % or as a fraction.")
if item is None:
    st.info("Upload a drive-cycle CSV to estimate its state of charge.")
    st.stop()
user = read_or_stop("soc", item, config["extra"]["stats"])
try:
    with st.spinner(f"Running {user.info['samples']:,} s of drive cycle through the float and the crossbar model…"):
        result = predictions(ckpt, item.key, user, settings)
except MemgruError as exc:
    st.error(f"This setting cannot be programmed: {exc}")
    st.stop()

cols = st.columns(3)
for col, (model, res) in zip(cols, result.items(), strict=False):
    col.metric(f"RMSE · {model} model", "no truth" if res["rmse"] is None else f"{res['rmse']:.2f} %",
               help="Root-mean-square error of the estimate against the file's SOC, in percentage points. "
                    + ("Full precision, as trained." if model == "float" else f"On the crossbars: {settings.label()}"))
cols[2].metric("Trace", f"{user.info['duration_s'] / 3600:.2f} h", f"{user.info['samples']:,} samples at 1 Hz",
               delta_color="off")
for note in user.info["notes"]:
    st.caption(f"Note: {note}")

truth = None if user.truth is None else user.truth * 100
table = soc_table({model: res["soc"] for model, res in result.items()}, truth)
show_figure(soc_figure(table, f"SOC · {sample_label(item.name)} · {settings.label()}"), table,
            f"soc_{item.name.rsplit('.', 1)[0]}", "soc_trace")
