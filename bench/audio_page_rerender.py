"""Audio page re-render time after a sidebar move (AppTest script time, real checkpoint, bundled 4-s clip).

Run from the repository root: `PYTHONPATH=. python bench/audio_page_rerender.py`. Prints the first
render, two moves to settings not seen before (programming + calibration), and the median of ten
moves between two settings already computed (served from the page's caches).
"""

import statistics
import time
from pathlib import Path

from streamlit.testing.v1 import AppTest

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
    print(f"first render: {timed(at.run):.2f} s")
    print(f"new setting, sigma 0.05: {timed(lambda: at.sidebar.slider(key='sigma').set_value(0.05).run()):.2f} s")
    print(f"new setting, 4-bit weights: "
          f"{timed(lambda: at.sidebar.select_slider(key='weight_bits').set_value(4).run()):.2f} s")
    at.sidebar.slider(key="sigma").set_value(0.02).run()  # both sigmas now computed at 4 bits
    def move(value: float) -> None:
        at.sidebar.slider(key="sigma").set_value(value).run()

    moves = [timed(lambda v=v: move(v)) for _ in range(5) for v in (0.05, 0.02)]
    print(f"settings seen before: median {statistics.median(moves) * 1000:.0f} ms over {len(moves)} moves")
    assert not at.exception


if __name__ == "__main__":
    main()
