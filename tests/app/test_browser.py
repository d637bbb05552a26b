"""The dashboard in a real browser: `streamlit run app.py` on a loopback port driven by Playwright with
Debian's Chromium. Opens every page, moves a slider and sees the page change, downloads figures,
records from a (fake) microphone.

A failing test leaves a screenshot in pytest's temporary folder (path printed). Skipped, with the
reason, only where /usr/bin/chromium or the playwright package is missing.

Screenshots for the README: `MEMGRU_SCREENSHOTS=docs/screenshots python -m pytest -m browser
tests/app/test_browser.py -k screenshots` (runs against the repository's own pretrained/ and results/).
"""

from __future__ import annotations

import os
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from memgru.tasks.audio import LABELS

pytestmark = pytest.mark.browser
CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync"]
PAGES = {"": "memgru — GRU networks on memristor crossbars", "Audio": "Urban sound classification",
         "Trajectory": "Flight trajectory verification", "Battery_SOC": "Battery state of charge",
         "Crossbar": "Crossbar arrays",
         "Quantization_and_robustness": "Quantization and robustness", "Training": "Training curves"}
"""URL path of each page and its title."""
IDLE = "[data-testid='stApp'][data-test-script-state='notRunning']"
"""The app root once the script run has finished."""

try:
    from playwright.sync_api import Page, expect, sync_playwright
except ImportError:  # the skip below names the missing package
    sync_playwright = None

if sync_playwright is None or not CHROMIUM.exists():
    pytest.skip("browser tests need /usr/bin/chromium (apt-get install chromium) and the playwright package "
                f"(pip install playwright); missing: {'playwright' if sync_playwright is None else CHROMIUM}",
                allow_module_level=True)


@pytest.fixture(scope="module")
def playwright_driver():
    """One Playwright driver for the module (a second sync driver cannot start while one runs)."""
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="module")
def context(playwright_driver, tmp_path_factory: pytest.TempPathFactory):
    """A headless Chromium with a fresh profile."""
    ctx = playwright_driver.chromium.launch_persistent_context(
        str(tmp_path_factory.mktemp("profile")), executable_path=str(CHROMIUM), headless=True,
        args=CHROMIUM_ARGS, accept_downloads=True, viewport={"width": 1400, "height": 1000},
    )
    yield ctx
    ctx.close()


@pytest.fixture
def page(context, request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Page]:
    """A fresh tab; a screenshot is saved when the test fails."""
    tab = context.new_page()
    yield tab
    report = getattr(request.node, "rep_call", None)
    if report is not None and report.failed:
        shot = tmp_path / f"{request.node.name}.png"
        tab.screenshot(path=str(shot), full_page=True)
        print(f"screenshot of the failure: {shot}")
    tab.close()


def open_page(page: Page, url: str) -> None:
    """Load a page and wait until its script run has finished."""
    page.goto(url)
    page.wait_for_selector(IDLE, timeout=120_000)


def wait_rerun(page: Page) -> float:
    """Seconds until the rerun triggered just before has finished."""
    start = time.perf_counter()
    page.wait_for_timeout(50)
    page.wait_for_selector(IDLE, timeout=120_000)
    return time.perf_counter() - start


@pytest.mark.parametrize("path", list(PAGES))
def test_every_page_opens_without_errors(app_url: str, page: Page, path: str):
    open_page(page, f"{app_url}/{path}")
    expect(page.locator("h1").first).to_contain_text(PAGES[path])
    assert page.locator("[data-testid='stException']").count() == 0
    sidebar = page.locator("[data-testid='stSidebar']")
    expect(sidebar).to_contain_text("Weight bits")
    expect(sidebar).to_contain_text("Programming variation σ")


def choose_option(page: Page, label: str, option: str) -> None:
    """Pick `option` in the selectbox labelled `label`."""
    page.locator("[data-testid='stSelectbox']", has_text=label).first.click()
    page.get_by_role("option", name=option, exact=True).click()


def test_sigma_slider_changes_the_crossbar(app_url: str, page: Page):
    open_page(page, f"{app_url}/Crossbar")
    choose_option(page, "Task model", "soc")
    wait_rerun(page)
    error = page.locator("[data-testid='stMetric']", has_text="Weight error")
    before = error.inner_text()
    thumb = page.locator("[data-testid='stSidebar']").get_by_role("slider", name="Programming variation σ")
    thumb.focus()
    times = []
    for _ in range(3):  # 0.020 -> 0.035 in three steps; each a rerun with a new chip
        thumb.press("ArrowRight")
        times.append(wait_rerun(page))
    expect(error).not_to_have_text(before)
    print(f"crossbar rerun after a σ step: {', '.join(f'{t:.2f}' for t in times)} s (soc model)")


def test_download_figure_html_and_png(app_url: str, page: Page, tmp_path: Path):
    open_page(page, f"{app_url}/Training")
    choose_option(page, "Task", "soc")
    wait_rerun(page)
    with page.expect_download() as info:
        page.get_by_role("button", name="Figure (HTML)").click()
    html = tmp_path / "figure.html"
    info.value.save_as(html)
    assert info.value.suggested_filename == "soc_training.html"
    assert "Plotly.newPlot" in html.read_text() and "noise · val rmse" in html.read_text()
    with page.expect_download() as info:
        page.get_by_role("button", name="Data (CSV)").click()
    csv = tmp_path / "data.csv"
    info.value.save_as(csv)
    assert csv.read_text().splitlines()[0].startswith("epoch,train_loss,val_loss,val_metric")
    chart = page.locator("[data-testid='stPlotlyChart']").first
    chart.hover()
    with page.expect_download() as info:
        chart.locator(".modebar-btn[data-title^='Download plot']").click()
    png = tmp_path / info.value.suggested_filename
    info.value.save_as(png)
    assert png.name == "soc_training.png" and png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_audio_upload_shows_the_predicted_label(audio_app_url: str, page: Page, wav: bytes, tmp_path: Path):
    open_page(page, f"{audio_app_url}/Audio")
    page.get_by_text("upload a file", exact=True).click()
    wait_rerun(page)
    sound = tmp_path / "siren_street.wav"
    sound.write_bytes(wav)
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files(str(sound))
    truth = page.locator("[data-testid='stMetric']", has_text="Truth (from the file name)")
    expect(truth).to_contain_text("siren", timeout=60_000)
    wait_rerun(page)
    for model in ("float model", "crossbar model"):
        label = page.locator("[data-testid='stMetric']", has_text=model).locator("[data-testid='stMetricValue']")
        assert label.inner_text().rstrip(" ✓✗") in LABELS
    assert page.locator("[data-testid='stException']").count() == 0
    expect(page.locator("[data-testid='stPlotlyChart']")).to_have_count(3)  # probabilities, waveform, log-mel


@pytest.fixture(scope="module")
def mic_context(playwright_driver, tmp_path_factory: pytest.TempPathFactory):
    """A headless Chromium whose microphone is Chromium's fake capture device (a periodic beep) and
    whose permission prompt is accepted automatically."""
    ctx = playwright_driver.chromium.launch_persistent_context(
        str(tmp_path_factory.mktemp("mic_profile")), executable_path=str(CHROMIUM), headless=True,
        args=[*CHROMIUM_ARGS, "--use-fake-ui-for-media-stream", "--use-fake-device-for-media-stream"],
        permissions=["microphone"], viewport={"width": 1400, "height": 1000},
    )
    yield ctx
    ctx.close()


def test_microphone_recording_is_classified(audio_app_url: str, mic_context, tmp_path: Path):
    page = mic_context.new_page()
    try:
        open_page(page, f"{audio_app_url}/Audio")
        page.get_by_text("record with the microphone", exact=True).click()
        wait_rerun(page)
        recorder = page.locator("[data-testid='stAudioInput']")
        recorder.get_by_role("button", name="Record").click()
        page.wait_for_timeout(2500)  # 2.5 s of the fake device's beeps
        recorder.get_by_role("button", name="Stop recording").click()
        float_label = page.locator("[data-testid='stMetric']", has_text="float model")
        expect(float_label).to_be_visible(timeout=60_000)
        wait_rerun(page)
        for model in ("float model", "crossbar model"):
            label = page.locator("[data-testid='stMetric']", has_text=model).locator("[data-testid='stMetricValue']")
            assert label.inner_text().rstrip(" ✓✗") in LABELS
        assert page.locator("[data-testid='stException']").count() == 0
        assert page.locator("[data-testid='stAlertContentError']").count() == 0
    except Exception:
        page.screenshot(path=str(tmp_path / "microphone.png"), full_page=True)
        print(f"screenshot of the failure: {tmp_path / 'microphone.png'}")
        raise
    finally:
        page.close()


@pytest.mark.skipif(not os.environ.get("MEMGRU_SCREENSHOTS"), reason="MEMGRU_SCREENSHOTS=DIR writes README shots")
def test_screenshots(context, start, tmp_path: Path):
    """Full-page screenshots of every page against the repository's own folders."""
    out = Path(os.environ["MEMGRU_SCREENSHOTS"])
    out.mkdir(parents=True, exist_ok=True)
    url = start({f"MEMGRU_{n.upper()}_DIR": "" for n in ("pretrained", "results", "data")}, tmp_path / "app.log")
    tab = context.new_page()
    tab.set_viewport_size({"width": 1400, "height": 2400})  # Streamlit scrolls inside the page: make it tall
    for path in PAGES:
        open_page(tab, f"{url}/{path}")
        tab.wait_for_timeout(1500)  # let plotly finish drawing
        tab.screenshot(path=str(out / f"{(path or 'home').lower()}.png"), full_page=True)
    tab.close()
