"""Trajectory page: is a flight track real or spoofed? Float vs crossbar verdict on a sample or an upload."""

import pandas as pd
import streamlit as st

from memgru.errors import MemgruError
from memgru.pipeline import flagged_windows, two_class_verdict, window_scores
from memgru.plots import (
    altitude_figure,
    probability_bars,
    probability_table,
    track_figure,
    track_table,
    window_scores_figure,
    window_scores_table,
)
from memgru.tasks.trajectory import USER_COLUMNS
from ui.cache import predictions, prefetch_neighbours, task_page
from ui.figures import show_figure
from ui.inputs import SAMPLE, choose_input, read_or_stop, samples, track_reports

VERDICTS = {"true": "real track", "false": "false track"}  # what each class means
SAMPLE_TRUTH = {"real": "true", "false": "false"}  # samples.csv `truth` -> class label

settings, ckpt, config = task_page(
    "trajectory", "trajectory", "trajectory", "Flight trajectory verification",
    "A GRU reads 320-s windows of an ADS-B track (10-s steps: speed, turn and climb rates as reported and "
    "as derived from the positions, and their residuals) and says whether the track is real or false "
    "(spoofed, replayed, spliced…); a file's verdict averages its windows.")

catalogue = samples("trajectory").set_index("file")


def sample_label(name: str) -> str:
    """'false_replay.csv' -> 'false · replay (source 4bb852)'."""
    row = catalogue.loc[name] if name in catalogue.index else None
    return name if row is None else f"{row['truth']} · {row['family'].replace('_', ' ')} (source {row['source']})"


columns = "; ".join(f"`{c}` ({u})" for c, u in USER_COLUMNS.items())
item = choose_input("trajectory", ["csv", "json"], "tr", format_sample=sample_label,
                    upload_help=f"One aircraft per file, CSV or JSON records. Columns: {columns}.")
allow_missing = st.checkbox(
    "Rows may leave fields empty", key="tr_allow_missing",
    help="ADS-B sends position and velocity in separate messages, so OpenSky state vectors and message logs have "
         "rows that carry only some fields. Ticked, empty cells are interpolated from the rows that carry the field "
         "(over gaps up to 20 s, as for the training data); unticked, an empty cell is an error naming its row. "
         "Same as `predict --allow-missing`.")
if item is None:
    st.info("Upload a track (CSV or JSON) to verify it.")
    st.stop()
user = read_or_stop("trajectory", item, config["extra"]["stats"], allow_missing=allow_missing)
key = f"{item.key}:allow_missing" if allow_missing else item.key  # what the cached predictions are of
try:
    with st.spinner("Running the float and the crossbar model…"):
        result = predictions(ckpt, key, user, settings)
except MemgruError as exc:
    st.error(f"This setting cannot be programmed: {exc}")
    st.stop()

threshold = st.number_input(
    "Decision threshold on P(false)", min_value=0.01, max_value=0.99, value=0.5, step=0.01, key="tr_threshold",
    help="The file is called false when its mean P(false) over the windows exceeds this. 0.5 = the more probable "
         "label; the model card's operating-point table gives thresholds set on validation for a target "
         "false-alarm rate (same as `predict --threshold`).")
from_sample = st.session_state.get("tr_source") == SAMPLE and item.name in catalogue.index
truth = SAMPLE_TRUTH.get(catalogue.loc[item.name, "truth"]) if from_sample else None
cols = st.columns(3)
for col, (model, res) in zip(cols, result.items(), strict=False):
    label = two_class_verdict("trajectory", res["probabilities"], threshold)
    mark = "" if truth is None else (" ✓" if label == truth else " ✗")
    col.metric(f"{model} model", f"{VERDICTS[label]}{mark}",
               f"P(real) = {100 * res['probabilities']['true']:.1f} %", delta_color="off",
               help="Full precision, as trained." if model == "float" else f"On the crossbars: {settings.label()}")
cols[2].metric("Truth", VERDICTS[truth] if truth else "unknown", help="Known for the bundled samples only.")
probs = probability_table({model: res["probabilities"] for model, res in result.items()})
show_figure(probability_bars(probs, f"verdict probabilities · {settings.label()}"), probs,
            f"trajectory_{item.name}_verdict", "tr_probs")

info = user.info
scores = window_scores_table(info["window_start_s"],
                             {model: window_scores(res, "false") for model, res in result.items()})
show_figure(window_scores_figure(scores, threshold, f"P(false) per 320-s window · {settings.label()}"), scores,
            f"trajectory_{item.name}_windows", "tr_windows")
if info["n_windows"] > 1:
    st.caption(" · ".join(f"{model}: " + "; ".join(flagged_windows(window_scores(res, "false"),
                                                                 info["window_start_s"], threshold))
                          for model, res in result.items()))
if info["derived_fields"]:
    st.warning(f"{item.name} has no {', '.join(info['derived_fields'])}: derived from the positions, so the "
               "reported-vs-derived consistency features carry nothing and the verdict rests on the motion alone.")
facts = {"reports": info["n_reports"], "duration (s)": round(info["duration_s"], 1),
         "reports dropped in cleaning": info["dropped_reports"], "gap-free segments": info["segments"],
         "windows judged": info["n_windows"], "icao24": info["icao24"] or "–", "callsign": info["callsign"] or "–",
         "derived fields": ", ".join(info["derived_fields"]) or "none",
         "empty cells interpolated": ", ".join(f"{c} {n}" for c, n in info.get("missing_cells", {}).items()) or "none"}
st.dataframe(pd.DataFrame([facts]).astype(str), hide_index=True, key="tr_facts")

table = track_table(track_reports(item, allow_missing=allow_missing))
left, right = st.columns(2)
with left:
    show_figure(track_figure(table, f"track · {item.name} (km from the first report)"), table,
                f"trajectory_{item.name}_track", "tr_track")
with right:
    show_figure(altitude_figure(table, f"altitude · {item.name}"), table, f"trajectory_{item.name}_altitude",
                "tr_alt")
prefetch_neighbours(ckpt, key, user)  # last: the next slider step, computed while the user looks
