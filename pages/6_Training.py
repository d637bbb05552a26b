"""Training view: loss and validation metric per epoch of the float and the noise-trained models."""

import streamlit as st

from memgru.errors import MemgruError
from memgru.plots import METRIC_LABELS, kept_epochs, training_curves
from memgru.tasks.registry import TASK_NAMES, task_spec
from ui.controls import choose, sidebar
from ui.figures import show_figure
from ui.sources import LOG_RUNS, has_training_logs, pretrained_root, training_logs

st.set_page_config(page_title="memgru · training", layout="wide")
sidebar()
st.title("Training curves")
st.caption("Per epoch: training loss (solid), validation loss (dashed) and the validation metric, for the "
           "model trained in float and the one trained with weight-noise injection (as in the paper's Fig. 6 "
           "and 8). Read from the logs saved next to each checkpoint.")

st.session_state.setdefault("t_task", next((t for t in TASK_NAMES if has_training_logs(t)), TASK_NAMES[0]))
task = choose("Task", TASK_NAMES, key="t_task")
metric = task_spec(task).metric
folder = pretrained_root() / task
try:
    logs = training_logs(task)
except MemgruError as exc:
    st.error(f"Cannot read the {task} training logs: {exc}")
    st.stop()
if logs is None:
    st.info(f"No training logs for {task} yet: expected {' and '.join(LOG_RUNS.values())} in {folder}, "
            f"written by `python -m memgru train --task {task}`.")
    st.stop()

show_figure(training_curves(logs, metric, title=f"{task} training"), logs, f"{task}_training", "t_curves")
st.subheader("Epoch kept per run")
label = METRIC_LABELS[metric]
st.dataframe(kept_epochs(logs, metric).rename(columns={"val_metric": f"val {label}",
                                                       "val_metric_noisy": f"val {label} under weight noise"}),
             hide_index=True, key="t_best")
