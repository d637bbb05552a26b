"""Fixtures of the dashboard tests: the app's folders moved to temporary ones, a tiny trained-looking
checkpoint with test data, results CSVs and training logs written by the tests themselves."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from streamlit.testing.v1 import AppTest

from memgru.checkpoint import save_checkpoint
from memgru.config import ModelConfig
from memgru.models import build_model
from memgru.pipeline import CALIBRATION_FILE
from memgru.tasks.audio import LABELS, FeatureConfig, NormStats
from memgru.tasks.common import SequenceSet
from memgru.tasks.io import TRAJECTORY_LABELS
from memgru.tasks.soc import FEATURES
from memgru.tasks.trajectory import FEATURE_NAMES, STEP_S, WINDOW_POINTS

APP_ROOT = Path(__file__).resolve().parents[2]
"""The repository root (app.py, pages/)."""
TINY = ModelConfig(kind="gru_classifier", n_features=3, n_outputs=2, hidden=8, layers=1, dropout=0.0)
"""A trajectory-task architecture small enough for page tests."""
TINY_TASKS = {
    "audio": ModelConfig(kind="gru_classifier", n_features=FeatureConfig().n_features, n_outputs=len(LABELS),
                         hidden=8, layers=1, dropout=0.0),
    "soc": ModelConfig(kind="gru_regressor", n_features=len(FEATURES), n_outputs=1, hidden=8, layers=1, dropout=0.0),
    "trajectory": ModelConfig(kind="gru_classifier", n_features=len(FEATURE_NAMES), n_outputs=len(TRAJECTORY_LABELS),
                              hidden=8, layers=1, dropout=0.0),
}
"""Tiny task-page architectures with the real tasks' inputs and outputs."""


def run_page(page: str, **state) -> AppTest:
    """Run the app page `page` (path from the repository root) once with session `state` preset; asserts it
    raised nothing. Shared by the AppTest modules (`from .conftest import run_page`)."""
    at = AppTest.from_file(str(APP_ROOT / page), default_timeout=120)
    for key, value in state.items():
        at.session_state[key] = value
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


@pytest.fixture(autouse=True)
def no_prefetch(monkeypatch: pytest.MonkeyPatch) -> None:
    """AppTest runs without background prefetch (`ui.prefetch`), so page runs stay deterministic; the test of
    the prefetch turns it back on. Servers started by the browser tests keep it (module fixtures start first)."""
    monkeypatch.setenv("MEMGRU_PREFETCH", "0")


@pytest.fixture
def folders(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Empty pretrained/, results/ and data/ folders that the app reads instead of the repository's."""
    out = {name: tmp_path / name for name in ("pretrained", "results", "data")}
    for name, path in out.items():
        path.mkdir()
        monkeypatch.setenv(f"MEMGRU_{name.upper()}_DIR", str(path))
    return out


def write_checkpoint(pretrained: Path, task: str = "trajectory", metrics: dict | None = None) -> Path:
    """A tiny seeded checkpoint for `task` with model-card metrics; returns its folder."""
    torch.manual_seed(0)
    folder = pretrained / task
    save_checkpoint(folder, build_model(TINY).eval(), TINY, task=task, extra={"metrics": metrics or {}})
    return folder


def task_stats(task: str) -> dict:
    """Normalisation statistics shaped like the real task's (`config["extra"]["stats"]`)."""
    if task == "audio":
        n = FeatureConfig().n_features
        return {"norm_stats": NormStats(np.full(n, -40, np.float32), np.full(n, 15, np.float32)).to_dict()}
    if task == "trajectory":
        n = len(FEATURE_NAMES)
        return {"feature_stats": {"feature_names": list(FEATURE_NAMES), "mean": [0.0] * n, "std": [1.0] * n,
                                  "step_s": STEP_S, "window_points": WINDOW_POINTS}}
    return {"norm_stats": {"features": list(FEATURES), "mean": [3.7, 1.0, 25.0], "std": [0.3, 2.0, 10.0]}}


def write_task_checkpoint(pretrained: Path, task: str, calibration_steps: int = 20) -> Path:
    """A tiny seeded checkpoint of `task` (`TINY_TASKS`) with the task's stats and labels and a calibration set;
    its folder."""
    cfg = TINY_TASKS[task]
    torch.manual_seed(0)
    folder = pretrained / task
    labels = {"audio": list(LABELS), "trajectory": list(TRAJECTORY_LABELS)}.get(task)
    extra = {"stats": task_stats(task), "labels": labels, "metrics": {}}
    save_checkpoint(folder, build_model(cfg).eval(), cfg, task=task, extra=extra)
    x = np.random.default_rng(0).normal(size=(8, calibration_steps, cfg.n_features)).astype(np.float32)
    np.savez_compressed(folder / CALIBRATION_FILE, x=x)
    return folder


def write_splits(data: Path, task: str = "trajectory", n: int = 24) -> None:
    """Val and test splits for the tiny model: the label is the sign of the first feature's mean."""
    rng = np.random.default_rng(0)
    for split in ("val", "test"):
        x = rng.normal(size=(n, 6, TINY.n_features)).astype(np.float32)
        y = (x[:, :, 0].mean(1) > 0).astype(np.int64)
        SequenceSet(x, y, pd.DataFrame({"i": range(n)})).save(data / task / split)


def results_frame(task: str = "audio") -> pd.DataFrame:
    """A results table like the experiment commands write: bits x σ x 2 seeds, float reference included."""
    rows = []
    for bits in (2, 4, 6, 8, 32):
        for sigma in (0.0, 0.05):
            for seed in (0, 1):
                rows.append({"weight_bits": bits, "act_bits": 32 if bits == 32 else 8, "sigma": sigma,
                             "snr_db": np.nan, "seed": seed, "accuracy": 40 + 5 * min(bits, 10) - 100 * sigma + seed,
                             "n": 50, "seconds": 0.1, "training": "float"})
    return pd.DataFrame(rows)


def write_log(folder: Path, run: str, epochs: int = 4) -> None:
    """A JSON-lines training log as `memgru.train.train_model` writes it."""
    folder.mkdir(parents=True, exist_ok=True)
    lines = [json.dumps({"epoch": e, "train_loss": 1.0 / e, "val_loss": 1.1 / e, "val_metric": 50 + 10 * e,
                         "lr": 1e-3, "seconds": 0.5}) for e in range(1, epochs + 1)]
    (folder / f"log_{run}.jsonl").write_text("\n".join(lines) + "\n")


@pytest.fixture
def trained(folders: dict[str, Path]) -> Path:
    """A tiny trajectory checkpoint (with a model-card metric) and its val/test splits; returns its folder."""
    folder = write_checkpoint(folders["pretrained"], metrics={"test_accuracy": 91.5})
    write_splits(folders["data"])
    return folder


@pytest.fixture
def audio_model(folders: dict[str, Path]) -> Path:
    """A tiny audio checkpoint (`write_task_checkpoint`); returns its folder."""
    return write_task_checkpoint(folders["pretrained"], "audio")


@pytest.fixture
def soc_model(folders: dict[str, Path]) -> Path:
    """A tiny SOC checkpoint (`write_task_checkpoint`); returns its folder."""
    return write_task_checkpoint(folders["pretrained"], "soc")


@pytest.fixture
def trajectory_model(folders: dict[str, Path]) -> Path:
    """A tiny trajectory checkpoint with the real task's 13 features (`write_task_checkpoint`); its folder."""
    return write_task_checkpoint(folders["pretrained"], "trajectory")


def wav_bytes(seconds: float = 4.0, seed: int = 0) -> bytes:
    """A 16-bit 22.05 kHz WAV: a 440 Hz tone with a 1.5 kHz chirp and a little noise."""
    import soundfile as sf

    t = np.arange(int(22050 * seconds)) / 22050
    rng = np.random.default_rng(seed)
    x = 0.4 * np.sin(2 * np.pi * 440 * t) + 0.2 * np.sin(2 * np.pi * (1500 + 300 * t) * t)
    buffer = io.BytesIO()
    sf.write(buffer, (x + 0.02 * rng.standard_normal(len(t))).astype(np.float32), 22050, format="WAV",
             subtype="PCM_16")
    return buffer.getvalue()


@pytest.fixture
def wav() -> bytes:
    """A 4-s test sound as WAV bytes (`wav_bytes`)."""
    return wav_bytes()


@pytest.fixture
def results_table() -> pd.DataFrame:
    """An audio results table (see `results_frame`)."""
    return results_frame()


@pytest.fixture
def results(folders: dict[str, Path], results_table: pd.DataFrame) -> Path:
    """`results/audio_bits.csv` written from `results_table`."""
    path = folders["results"] / "audio_bits.csv"
    results_table.to_csv(path, index=False)
    return path


@pytest.fixture
def logs(folders: dict[str, Path]) -> Path:
    """Float and noise training logs of the soc task; returns their folder."""
    folder = folders["pretrained"] / "soc"
    write_log(folder, "float")
    write_log(folder, "noise", epochs=3)
    return folder


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def start_app(env: dict[str, str], log: Path) -> tuple[subprocess.Popen, str]:
    """`streamlit run app.py` on a free loopback port; returns the process and its URL once healthy."""
    port = free_port()
    cmd = [sys.executable, "-m", "streamlit", "run", "app.py", "--server.headless", "true", "--server.port",
           str(port), "--server.address", "127.0.0.1", "--browser.gatherUsageStats", "false"]
    with open(log, "w") as out:
        proc = subprocess.Popen(cmd, cwd=APP_ROOT, env={**os.environ, **env}, stdout=out, stderr=subprocess.STDOUT)
    url = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"streamlit exited with {proc.returncode}: {log.read_text()[-2000:]}")
        try:
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=2) as response:
                if response.read() == b"ok":
                    return proc, url
        except OSError:
            time.sleep(0.5)
    proc.kill()
    raise RuntimeError(f"streamlit did not become healthy in 90 s: {log.read_text()[-2000:]}")


def stop(proc: subprocess.Popen) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=15)
    except subprocess.TimeoutExpired:
        proc.kill()


@pytest.fixture(scope="module")
def app_url(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """The app serving test folders: soc training logs, audio results, no checkpoints."""
    root = tmp_path_factory.mktemp("app")
    env = {}
    for name in ("pretrained", "results", "data"):
        (root / name).mkdir()
        env[f"MEMGRU_{name.upper()}_DIR"] = str(root / name)
    write_log(root / "pretrained" / "soc", "float")
    write_log(root / "pretrained" / "soc", "noise")
    results_frame().to_csv(root / "results" / "audio_bits.csv", index=False)
    proc, url = start_app(env, root / "streamlit.log")
    yield url
    stop(proc)


@pytest.fixture(scope="module")
def start() -> Iterator:
    """`start_app` for a test that needs its own server; every server started is stopped afterwards."""
    procs = []

    def run(env: dict[str, str], log: Path) -> str:
        proc, url = start_app(env, log)
        procs.append(proc)
        return url

    yield run
    for proc in procs:
        stop(proc)


@pytest.fixture(scope="module")
def audio_app_url(start, tmp_path_factory: pytest.TempPathFactory) -> str:
    """The app serving a tiny audio checkpoint (`write_task_checkpoint`) and nothing else."""
    root = tmp_path_factory.mktemp("audio_app")
    env = {}
    for name in ("pretrained", "results", "data"):
        (root / name).mkdir()
        env[f"MEMGRU_{name.upper()}_DIR"] = str(root / name)
    write_task_checkpoint(root / "pretrained", "audio")
    return start(env, root / "streamlit.log")


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo):
    """Keep each phase's report on the test item (the browser `page` fixture screenshots failures)."""
    report = yield
    setattr(item, f"rep_{report.when}", report)
    return report
