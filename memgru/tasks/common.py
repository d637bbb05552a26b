"""Containers and helpers shared by the task pipelines (audio, trajectory, SOC)."""

from __future__ import annotations

import json
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from memgru.errors import MemgruError


@dataclass
class SequenceSet:
    """Model-ready sequences of one data split.

    Example:
        >>> s = SequenceSet(np.zeros((2, 5, 3), np.float32), np.array([0, 1]), pd.DataFrame({"src": ["a", "b"]}))
        >>> len(s)
        2
    """

    x: np.ndarray
    """Inputs, float32 [N, T, F]: N sequences of T time steps with F features (already normalised)."""
    y: np.ndarray
    """Targets: int64 class ids [N] for classification, float32 [N, T] (e.g. SOC in 0..1) for regression."""
    meta: pd.DataFrame
    """One row per sequence: its source/group id and any task labels (family, temperature, fold ...)."""

    def __post_init__(self) -> None:
        if self.x.ndim != 3:
            raise MemgruError(f"sequence inputs must be [N, T, F], got shape {self.x.shape}")
        if len(self.y) != len(self.x) or len(self.meta) != len(self.x):
            raise MemgruError(
                f"sequence set is inconsistent: {len(self.x)} inputs, {len(self.y)} targets, "
                f"{len(self.meta)} metadata rows"
            )

    def __len__(self) -> int:
        return len(self.x)

    def save(self, path: str | Path) -> None:
        """Write the set as `<path>.npz` (arrays, no pickle) and `<path>.csv` (metadata)."""
        path = Path(path)
        path.parent.mkdir(parents=True, exist_ok=True)
        np.savez_compressed(path.with_suffix(".npz"), x=self.x.astype(np.float32), y=self.y)
        self.meta.to_csv(path.with_suffix(".csv"), index=False)

    @classmethod
    def load(cls, path: str | Path) -> SequenceSet:
        """Read a set written by `save` (never unpickles)."""
        path = Path(path)
        npz, csv = path.with_suffix(".npz"), path.with_suffix(".csv")
        if not npz.is_file() or not csv.is_file():
            raise MemgruError(f"no data split at {path} (expected {npz.name} and {csv.name}); build it first")
        arrays = load_arrays(npz, ("x", "y"), "data split")
        try:
            meta = pd.read_csv(csv)
        except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as err:
            raise MemgruError(f"data split metadata {csv} is not a readable CSV ({err}); rebuild the data") from err
        return cls(x=arrays["x"], y=arrays["y"], meta=meta)


_NPZ_ERRORS = (OSError, ValueError, EOFError, zipfile.BadZipFile, zlib.error)
"""What numpy raises for a truncated, corrupt or pickled NPZ file."""


def load_arrays(path: str | Path, keys: tuple[str, ...], what: str) -> dict[str, np.ndarray]:
    """The arrays `keys` of the NPZ archive `path`, read without unpickling anything.

    A missing, corrupt or non-NPZ file, an object (pickled) array or a missing key is one MemgruError
    naming `what` (e.g. "calibration set") and the file.
    """
    path = Path(path)
    if not path.is_file():
        raise MemgruError(f"{what} not found: {path}")
    try:
        data = np.load(path, allow_pickle=False)
    except _NPZ_ERRORS as err:
        raise MemgruError(f"{what} {path} is not a readable NPZ archive (corrupt, truncated or another format); "
                          "restore or rebuild it") from err
    if not isinstance(data, np.lib.npyio.NpzFile):
        raise MemgruError(f"{what} {path} is a single array, not an NPZ archive with {', '.join(keys)}")
    with data:
        missing = [k for k in keys if k not in data.files]
        if missing:
            raise MemgruError(f"{what} {path} lacks the array(s) {', '.join(missing)}")
        try:
            return {k: data[k] for k in keys}
        except _NPZ_ERRORS as err:
            raise MemgruError(f"{what} {path} holds corrupt data or pickled objects (never loaded); "
                              "restore or rebuild it") from err


def read_user_file(path: str | Path, max_bytes: int, what: str) -> bytes:
    """The bytes of a user's `what` file (e.g. "audio", "track", "SOC CSV") after checking, before any
    parsing, that it exists, is not empty and is at most `max_bytes` long."""
    path = Path(path)
    if not path.is_file():
        raise MemgruError(f"{what} file not found: {path}")
    size = path.stat().st_size
    if size == 0:
        raise MemgruError(f"{path.name} is empty (0 bytes)")
    if size > max_bytes:
        raise MemgruError(f"{path.name} is {size / 2**20:.1f} MiB, over the {max_bytes / 2**20:.0f} MiB limit "
                          f"for {what} files")
    return path.read_bytes()


def decode_text(raw: bytes, name: str, expected: str) -> str:
    """UTF-8 text of a user's file, or a clear error when it is binary or another encoding."""
    if b"\x00" in raw[:65536]:
        raise MemgruError(f"{name} is a binary file, not {expected}")
    try:
        return raw.decode("utf-8-sig")
    except UnicodeDecodeError as err:
        raise MemgruError(f"{name} is not UTF-8 text (bad byte at offset {err.start}), so not {expected}") from None


def write_json(path: str | Path, obj: object) -> None:
    """Write `obj` as indented, key-sorted JSON (stable bytes for the same content)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n")
