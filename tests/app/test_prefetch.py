"""Background prefetch of the settings one control step away (`ui.prefetch`, `ui.controls.neighbour_values`):
the worker runs the latest jobs in order and survives a failing one, and after an audio page run the next
weight-bits step is served without programming a chip."""

from __future__ import annotations

import threading

import pytest

import ui.cache
from ui.controls import DEFAULTS, FLOAT, neighbour_values
from ui.prefetch import PREFETCHER, THREAD_NAME, Prefetcher

from .conftest import run_page as run
from .test_task_pages import AUDIO, upload


def test_prefetcher_runs_the_latest_jobs_in_order_off_the_calling_thread():
    worker = Prefetcher()
    gate, started, seen, threads = threading.Event(), threading.Event(), [], set()

    def job(name: str, fail: bool = False):
        def run() -> None:
            started.set()
            gate.wait(5)
            threads.add(threading.current_thread().name)
            seen.append(name)
            if fail:
                raise RuntimeError(name)
        return run

    worker.submit([job("first")])  # starts at once and waits for the gate
    assert started.wait(5)
    worker.submit([job("stale"), job("stale too")])
    worker.submit([job("a", fail=True), job("b")])  # replaces the stale jobs not started yet
    gate.set()
    assert worker.wait_idle(5)
    assert seen == ["first", "a", "b"]  # a failing job does not stop the next
    assert threads == {"memgru-prefetch"}
    worker.submit([job("again")])  # the worker starts again after it went idle
    assert worker.wait_idle(5) and seen[-1] == "again"


def test_neighbours_are_one_control_step_away_and_valid():
    values = {**DEFAULTS}  # W6/A8, σ 0.02, seed 0
    moved = [{k: v for k, v in n.items() if values[k] != v} for n in neighbour_values(values)]
    assert moved == [{"weight_bits": 5}, {"weight_bits": 7}, {"seed": 1}, {"act_bits": 7}, {"act_bits": 9},
                     {"sigma": 0.025}, {"sigma": 0.015}]
    edge = neighbour_values({**values, "weight_bits": 2, "act_bits": FLOAT, "sigma": 0.2})
    changes = [{k: v for k, v in n.items() if values[k] != v or k in ("weight_bits", "act_bits", "sigma")}
               for n in edge]
    assert {c["weight_bits"] for c in changes} == {2, 3} and {c["act_bits"] for c in changes} == {FLOAT, 16}
    assert max(c["sigma"] for c in changes) == 0.2  # nothing beyond the slider's range


def test_the_next_weight_bits_step_is_ready_after_an_audio_page_run(audio_model, wav: bytes, monkeypatch):
    monkeypatch.setenv("MEMGRU_PREFETCH", "1")
    built, by_page = [], []
    real = ui.cache.deployed_model

    def counting(*args, **kwargs):
        built.append(args[2:5])  # weight bits, act bits, sigma
        if threading.current_thread().name != THREAD_NAME:
            by_page.append(args[2:5])
        return real(*args, **kwargs)

    monkeypatch.setattr(ui.cache, "deployed_model", counting)
    at = run(AUDIO, a_source="upload a file")
    upload(at, "siren_test.wav", wav, "audio/wav")
    assert PREFETCHER.wait_idle(120)
    assert (5, 8, 0.02) in built and (7, 8, 0.02) in built  # computed in the background
    assert (5, 8, 0.02) not in by_page
    at.sidebar.select_slider(key="weight_bits").set_value(5).run()
    assert not at.exception and (5, 8, 0.02) not in by_page  # served from the cache: the page programmed nothing
    assert "W5/A8" in at.sidebar.caption[-1].value
    assert PREFETCHER.wait_idle(120)  # W5's own neighbours (W4, ...) are computed next
    at.sidebar.select_slider(key="weight_bits").set_value(4).run()
    assert not at.exception and (4, 8, 0.02) in built and (4, 8, 0.02) not in by_page
    PREFETCHER.cancel()


@pytest.fixture(autouse=True)
def _quiet_worker():
    """No prefetch job of one test runs into the next."""
    yield
    PREFETCHER.cancel()
    PREFETCHER.wait_idle(120)
