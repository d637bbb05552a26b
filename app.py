"""memgru dashboard, home page: what memgru is, which pretrained models exist, how to start.

Run with `streamlit run app.py`; the pages in `pages/` appear in the sidebar.
"""

import pandas as pd
import streamlit as st

from memgru.config import ModelConfig
from memgru.errors import MemgruError
from memgru.tasks.registry import TASK_NAMES, task_spec
from ui.cache import parameter_count
from ui.controls import sidebar
from ui.sources import checkpoint_status, pretrained_root

TASK_TITLES = {
    "audio": "Urban sound classification (10 classes, log-mel features)",
    "trajectory": "Flight trajectory verification (true vs spoofed track)",
    "soc": "Battery state-of-charge estimation (per-second regression)",
}

st.set_page_config(page_title="memgru", layout="wide")
settings = sidebar()
st.title("memgru — GRU networks on memristor crossbars")
st.markdown(
    "memgru maps GRU networks onto 1T1R RRAM crossbar arrays (differential conductance pairs, tiling, "
    "ADC/DAC), quantizes them (symmetric weights, asymmetric activations, 2–16 bit), simulates the "
    "device non-idealities (programming variation, read noise, stuck devices, drift) and trains them to "
    "survive variation by weight-noise injection, following Hua et al., *Design of Lightweight GRU Network "
    "Model Based on Memristor* (JEIT, doi 10.11999/JEIT260152)."
)

st.subheader("Task models")
rows = []
for task in TASK_NAMES:
    spec, status = task_spec(task), checkpoint_status(task)
    if status.error:
        st.error(f"{task}: the checkpoint in {status.folder} cannot be read: {status.error}")
    try:
        model_cfg = ModelConfig.from_dict(status.config["model"]) if status.config else spec.model
    except MemgruError as exc:
        st.error(f"{task}: the model in {status.folder}/config.json is invalid: {exc}")
        model_cfg = spec.model
    rows.append({
        "task": task,
        "what": TASK_TITLES[task],
        "model": f"{model_cfg.kind}, {model_cfg.layers} × {model_cfg.hidden} hidden",
        "parameters": parameter_count(model_cfg),
        "weights": "pretrained" if status.config else "none yet (pages use a random init)",
        "metric": spec.metric,
    })
st.dataframe(pd.DataFrame(rows), hide_index=True, key="home_models")

cards = [checkpoint_status(t) for t in TASK_NAMES]
trained = [c for c in cards if c.config]
if trained:
    st.subheader("Model cards")
    for card in trained:
        with st.expander(f"{card.task}: {card.folder}", expanded=True):
            if card.metrics:
                st.dataframe(pd.DataFrame([card.metrics]), hide_index=True, key=f"home_metrics_{card.task}")
            else:
                st.caption("Its config.json lists no metrics (extra.metrics).")
else:
    st.info(f"No pretrained checkpoints in {pretrained_root()} yet: every page runs on a seeded random "
            "initialisation of the task's architecture and says so. Train one with "
            "`python -m memgru train --task <task>` (writes `pretrained/<task>/`).")

st.subheader("How to start")
st.markdown(
    f"""
- Set the hardware in the sidebar: weight and activation bits, programming variation σ, input SNR,
  device preset and device seed. Every page uses it (now: {settings.label()}).
- **Crossbar**: the conductances of any matrix of a task model as programmed on the arrays (G+, G−,
  effective weights, levels, stuck devices) and the programming map as CSV/NPZ.
- **Quantization and robustness**: accuracy or RMSE against weight bits, σ and input SNR, from the
  results of the experiment commands, or recomputed live once a checkpoint and its test data exist.
- **Training**: loss and validation metric per epoch of the float and the noise-trained model.
- Every figure's toolbar camera saves PNG or SVG (sidebar, *Figure export*); under each figure the
  buttons download it as HTML and its data as CSV.
- The same operations on the command line: `python -m memgru --help`.
"""
)
