"""Background prefetch of the chips a user is likely to ask for next.

A new hardware setting costs the dashboard one programming and calibration of the crossbars (about
1–2 s for the audio model on a 2-core CPU), far more than a re-render from the caches (~0.1 s). After a
page has shown its result, `PREFETCHER.submit` hands it the settings one control step away (see
`ui.controls.neighbour_values`); a single daemon thread computes them through the same Streamlit caches
the page reads, so the next slider step is served from the cache. Streamlit's per-key compute lock makes
a page that asks for a setting being prefetched wait for it instead of computing it twice.

Set `MEMGRU_PREFETCH=0` to switch it off (the page tests do, to stay deterministic).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Sequence

THREAD_NAME = "memgru-prefetch"
"""Name of the worker thread (its 'missing ScriptRunContext' warnings are silenced)."""
_LOG = logging.getLogger(__name__)


def enabled() -> bool:
    """True unless the environment sets MEMGRU_PREFETCH=0."""
    return os.environ.get("MEMGRU_PREFETCH", "1").strip() != "0"


class _QuietWorker(logging.Filter):
    """Drop Streamlit's 'missing ScriptRunContext' warning for calls made by the worker thread."""

    def filter(self, record: logging.LogRecord) -> bool:
        return record.threadName != THREAD_NAME


for _name in ("streamlit.runtime.scriptrunner_utils.script_run_context",
              "streamlit.runtime.scriptrunner.script_run_context"):
    logging.getLogger(_name).addFilter(_QuietWorker())


class Prefetcher:
    """Runs the latest submitted batch of jobs, in order, on one daemon thread.

    A new `submit` replaces the jobs not started yet (the user has moved on); a job that raises is logged
    and skipped. Jobs must be safe to run concurrently with a page run (the Streamlit caches are).
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._pending: list[Callable[[], object]] = []
        self._running = False
        self._idle = threading.Event()
        self._idle.set()

    def submit(self, jobs: Sequence[Callable[[], object]]) -> None:
        """Replace the pending jobs with `jobs` and make sure the worker runs."""
        with self._lock:
            self._pending = list(jobs)
            if not self._pending:
                return
            self._idle.clear()
            if not self._running:  # the worker clears this under the lock before it exits
                self._running = True
                threading.Thread(target=self._work, name=THREAD_NAME, daemon=True).start()

    def cancel(self) -> None:
        """Drop the jobs not started yet (a running one finishes)."""
        with self._lock:
            self._pending = []

    def wait_idle(self, timeout: float) -> bool:
        """Block until every submitted job has run (True) or `timeout` seconds passed (False)."""
        return self._idle.wait(timeout)

    def _work(self) -> None:
        while True:
            with self._lock:
                if not self._pending:
                    self._running = False
                    self._idle.set()
                    return
                job = self._pending.pop(0)
            try:
                job()
            except Exception:  # a failed guess must not stop the others; the page reports its own errors
                _LOG.debug("prefetch job failed", exc_info=True)


PREFETCHER = Prefetcher()
"""The process-wide prefetcher (one worker for every session: the CPU is shared anyway)."""
