"""Audio page re-render time after a sidebar move (AppTest script time, real checkpoint, bundled 4-s clip).

Run from the repository root: `PYTHONPATH=. python bench/audio_page_rerender.py`. Prints the first render;
moves to settings never computed, with the background prefetch off (`MEMGRU_PREFETCH=0`: the page programs
and calibrates the chip itself); one-step moves (weight bits, seed, σ) after the prefetch of the previous
page run finished; and the median of ten moves between two settings already computed.
"""

import os
import statistics
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

from ui.prefetch import PREFETCHER

PAGE = Path(__file__).resolve().parents[1] / "pages" / "1_Audio.py"
CLIP = "dog_bark__synthetic_heldout__synth-dog_bark-34.ogg"


def timed(action) -> float:
    """Seconds one page run takes."""
    start = time.perf_counter()
    action()
    return time.perf_counter() - start


def main() -> None:
    at = AppTest.from_file(str(PAGE), default_timeout=300)
    at.session_state["a_sample"] = CLIP
    os.environ["MEMGRU_PREFETCH"] = "0"
    print(f"first render: {timed(at.run):.2f} s")
    slider = lambda key, value: lambda: at.sidebar.slider(key=key).set_value(value).run()  # noqa: E731
    select = lambda key, value: lambda: at.sidebar.select_slider(key=key).set_value(value).run()  # noqa: E731
    print(f"new setting, no prefetch, sigma 0.05: {timed(slider('sigma', 0.05)):.2f} s")
    print(f"new setting, no prefetch, 4-bit weights: {timed(select('weight_bits', 4)):.2f} s")
    at.sidebar.slider(key="sigma").set_value(0.02).run()  # both sigmas now computed at 4 bits

    os.environ["MEMGRU_PREFETCH"] = "1"
    at.run()  # this run hands its neighbours to the prefetcher
    steps = (("weight bits 4 -> 5", select("weight_bits", 5)), ("weight bits 5 -> 6", select("weight_bits", 6)),
             ("sigma 0.020 -> 0.025", slider("sigma", 0.025)),
             ("seed 0 -> 1", lambda: at.sidebar.number_input(key="seed").increment().run()))
    for label, move in steps:
        waited = time.perf_counter()
        PREFETCHER.wait_idle(300)
        waited = time.perf_counter() - waited
        print(f"one step after the prefetch ({waited:.1f} s of waiting), {label}: {timed(move) * 1000:.0f} ms")
    PREFETCHER.wait_idle(300)

    moves = [timed(slider("sigma", v)) for _ in range(5) for v in (0.02, 0.025)]
    print(f"settings seen before: median {statistics.median(moves) * 1000:.0f} ms over {len(moves)} moves")
    PREFETCHER.cancel()
    PREFETCHER.wait_idle(300)  # a job still running at exit would be killed inside torch
    assert not at.exception


if __name__ == "__main__":
    main()
