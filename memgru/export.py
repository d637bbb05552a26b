"""Writing programmed conductances to disk: one NPZ and one CSV per matrix plus a JSON summary."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from memgru.crossbar import ProgrammedMatrix
from memgru.errors import MemgruError


def output_folder(folder: Path) -> Path:
    """Create `folder` for writing, or fail with one clear line (exists as a file, not writable)."""
    if folder.exists() and not folder.is_dir():
        raise MemgruError(f"output path {folder} exists and is not a folder")
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe = folder / ".memgru-write-test"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise MemgruError(f"cannot write into {folder}: {exc.strerror}") from exc
    return folder


def conductance_table(pm: ProgrammedMatrix) -> pd.DataFrame:
    """One row per device pair: slice, output, row, tile indices, target and actual G± [µS], stuck codes."""
    s, out, rows = pm.chip.g_pos.shape
    sl, o, r = np.meshgrid(np.arange(s), np.arange(out), np.arange(rows), indexing="ij")
    return pd.DataFrame({
        "slice": sl.ravel(), "output": o.ravel(), "row": r.ravel(),
        "row_tile": r.ravel() // pm.device.rows, "col_tile": o.ravel() // pm.device.outputs_per_array,
        "target_g_pos_uS": pm.cmap.g_pos.numpy().ravel(), "target_g_neg_uS": pm.cmap.g_neg.numpy().ravel(),
        "g_pos_uS": pm.chip.g_pos.numpy().ravel(), "g_neg_uS": pm.chip.g_neg.numpy().ravel(),
        "stuck_pos": pm.chip.stuck_pos.numpy().ravel(), "stuck_neg": pm.chip.stuck_neg.numpy().ravel(),
    })


def export_crossbar(folder: Path, matrices: dict[str, ProgrammedMatrix], summary: dict[str, Any]) -> dict[str, Any]:
    """Write `<name>.npz` (arrays), `<name>.csv` (per device pair) and `summary.json` into `folder`."""
    folder = output_folder(folder)
    files = []
    for name, pm in matrices.items():
        np.savez_compressed(folder / f"{name}.npz", **pm.export_arrays())
        conductance_table(pm).to_csv(folder / f"{name}.csv", index=False, float_format="%.5g")
        files += [f"{name}.npz", f"{name}.csv"]
    info = {"folder": str(folder), "files": [*files, "summary.json"]}
    (folder / "summary.json").write_text(json.dumps({**summary, "export": info}, indent=2, sort_keys=True) + "\n")
    return info
