"""Audio page: classify a sound (bundled sample, upload or microphone) with the float and the crossbar model."""

import numpy as np
import pandas as pd
import streamlit as st

from memgru.errors import MemgruError
from memgru.plots import probability_bars, probability_table, spectrogram_figure, waveform_figure
from memgru.tasks.audio import SAMPLE_RATE, FeatureConfig
from ui.cache import predictions, prefetch_neighbours, task_page
from ui.figures import show_figure
from ui.inputs import choose_input, log_mel, read_or_stop

AUDIO_TYPES = ["wav", "flac", "ogg", "mp3"]


def sample_label(name: str) -> str:
    """'dog_bark__heldout_real__scratch-dog2.ogg' -> 'dog_bark · heldout real · scratch-dog2'."""
    return " · ".join(part.replace("_", " ") if i == 1 else part
                      for i, part in enumerate(name.rsplit(".", 1)[0].split("__")))


settings, ckpt, config = task_page(
    "audio", "audio", "audio", "Urban sound classification",
    "A GRU classifies 4-s windows of log-mel features into the 10 UrbanSound8K classes (longer sounds: "
    "windows every 2 s, probabilities averaged). The float model and the same weights programmed on the "
    "crossbars at the sidebar's setting judge the same input.")
stats = config["extra"]["stats"]

item = choose_input("audio", AUDIO_TYPES, "a", record=True, format_sample=sample_label,
                    upload_help="Any length up to 10 minutes; resampled to 22.05 kHz mono. A file name that "
                                "starts with a class name (e.g. dog_bark_1.wav) counts as its ground truth.")
if item is None:
    st.info("Upload a sound or record one to classify it.")
    st.stop()
user = read_or_stop("audio", item, stats)
info = user.info
st.audio(item.data, format=f"audio/{item.name.rsplit('.', 1)[-1].lower()}")

try:
    with st.spinner("Running the float and the crossbar model…"):
        result = predictions(ckpt, item.key, user, settings)
except MemgruError as exc:
    st.error(f"This setting cannot be programmed: {exc}")
    st.stop()

truth = result["float"]["truth"]
cols = st.columns(3)
for col, (model, res) in zip(cols, result.items(), strict=False):
    p = res["probabilities"][res["label"]]
    mark = "" if truth is None else (" ✓" if res["label"] == truth else " ✗")
    col.metric(f"{model} model", f"{res['label']}{mark}", f"{100 * p:.1f} % confident", delta_color="off",
               help="Full precision, as trained." if model == "float" else f"On the crossbars: {settings.label()}")
cols[2].metric("Truth (from the file name)", truth or "unknown")
table = probability_table({model: res["probabilities"] for model, res in result.items()})
show_figure(probability_bars(table, f"class probabilities · {settings.label()}"), table,
            f"audio_{item.name}_probabilities", "a_probs")

st.caption(f"{item.name}: {info['duration_s']:.2f} s, {info['sample_rate']} Hz, {info['channels']} channel(s); "
           f"{result['float']['windows']} window(s) of 4 s.")
signal = user.waveform  # decoded once, by the reader
left, right = st.columns(2)
with left:
    wave_table = lambda: pd.DataFrame({"time_s": np.arange(len(signal)) / SAMPLE_RATE,  # noqa: E731
                                       "amplitude": signal})
    show_figure(waveform_figure(signal, SAMPLE_RATE, f"waveform · {item.name} (22.05 kHz mono)"), wave_table,
                f"audio_{item.name}_waveform", "a_wave")
with right:
    starts = info["window_starts_s"]
    window = 0
    if len(starts) > 1:
        window = st.select_slider("Window", list(range(len(starts))), key="a_window",
                                  format_func=lambda i: f"{starts[i]:g}–{starts[i] + 4:g} s")
    feature_config = stats["norm_stats"]["feature_config"]
    cfg = FeatureConfig.from_dict(feature_config)
    db = log_mel(item, signal, window, feature_config)
    mel_table = lambda: pd.DataFrame(db, columns=[f"band_{b}" for b in range(db.shape[1])]).assign(  # noqa: E731
        time_s=starts[window] + np.arange(len(db)) * cfg.hop_length / SAMPLE_RATE)
    show_figure(spectrogram_figure(db, cfg.hop_length / SAMPLE_RATE, cfg.fmax, starts[window],
                                   f"log-mel features · window {window}"),
                mel_table, f"audio_{item.name}_logmel_{window}", "a_mel")
prefetch_neighbours(ckpt, item.key, user)  # last: the next slider step, computed while the user looks
