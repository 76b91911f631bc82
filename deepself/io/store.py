"""HDF5 store shared by every stage: one array per sample, ids beside them, metadata as attributes.

Layout of a store file::

    /x     float32 (N, *sample_shape), chunked one sample per chunk (training reads single samples)
    /id    utf-8 strings (N,), the sample ids of the sample sheet, in its order
    attrs  "meta": a JSON object saying what the arrays are and how they were made

Files are written under a temporary name in the same folder and renamed when complete, so an
interrupted stage never leaves a file that looks finished.
"""

from __future__ import annotations

import contextlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import h5py
import numpy as np

from deepself.errors import DeepselfError


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; rename it to ``path`` only if the block succeeds."""
    final = Path(path)
    final.parent.mkdir(parents=True, exist_ok=True)
    tmp = final.with_name(f".{final.name}.tmp-{os.getpid()}")
    try:
        yield tmp
        os.replace(tmp, final)
    finally:
        if tmp.exists():
            tmp.unlink()


class StoreWriter:
    """Writes samples one chunk at a time into an open HDF5 file (see :func:`create_store`)."""

    def __init__(self, h5: h5py.File, n: int, sample_shape: tuple[int, ...], compression: str | None):
        self._x = h5.create_dataset(
            "x",
            shape=(n, *sample_shape),
            dtype="float32",
            chunks=(1, *sample_shape) if n else None,
            compression=compression,
        )
        self._id = h5.create_dataset("id", shape=(n,), dtype=h5py.string_dtype())
        self.n = n
        self.filled = 0

    def write(self, ids: list[str], x: np.ndarray) -> None:
        """Append a block of samples ``x`` (len(ids), *sample_shape) with their ids."""
        k = len(ids)
        if x.shape[0] != k:
            raise ValueError(f"{k} ids for {x.shape[0]} samples")
        self._x[self.filled : self.filled + k] = x
        self._id[self.filled : self.filled + k] = ids
        self.filled += k


@contextlib.contextmanager
def create_store(
    path: str | os.PathLike,
    n: int,
    sample_shape: tuple[int, ...],
    meta: dict,
    compression: str | None = None,
) -> Iterator[StoreWriter]:
    """Create a store of ``n`` samples atomically; every sample must be written before the block ends."""
    with atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as h5:
            h5.attrs["meta"] = json.dumps(meta, sort_keys=True)
            writer = StoreWriter(h5, n, tuple(int(s) for s in sample_shape), compression)
            yield writer
            if writer.filled != n:
                raise RuntimeError(f"{path}: {writer.filled} of {n} samples written")


@dataclass
class Store:
    """An open store: ``x`` is the lazy h5py dataset, ``ids`` and ``meta`` are read at once."""

    path: Path
    h5: h5py.File
    ids: list[str]
    meta: dict

    @property
    def x(self) -> h5py.Dataset:
        return self.h5["x"]

    def read(self, ids: list[str] | None = None) -> np.ndarray:
        """Read the samples with these ids (all when None), in the order given."""
        if ids is None:
            return self.x[()]
        if not ids:
            return np.empty((0, *self.x.shape[1:]), dtype=np.float32)
        index = {sid: i for i, sid in enumerate(self.ids)}
        missing = [sid for sid in ids if sid not in index]
        if missing:
            raise DeepselfError(f"{self.path}: no sample with id {missing[0]!r} ({len(missing)} missing)")
        rows = np.array([index[sid] for sid in ids], dtype=np.int64)
        order = np.argsort(rows)
        out = np.empty((len(rows), *self.x.shape[1:]), dtype=np.float32)
        out[order] = self.x[rows[order]]
        return out

    def close(self) -> None:
        self.h5.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


def open_store(path: str | os.PathLike) -> Store:
    """Open a store written by :func:`create_store` for reading."""
    path = Path(path)
    if not path.exists():
        raise DeepselfError(f"{path}: no such store file")
    try:
        h5 = h5py.File(path, "r")
    except OSError as err:
        raise DeepselfError(f"{path}: not a readable HDF5 store ({err})") from None
    if "x" not in h5 or "id" not in h5 or "meta" not in h5.attrs:
        h5.close()
        raise DeepselfError(f"{path}: not a deepself store (needs datasets x, id and attribute meta)")
    ids = [s.decode() if isinstance(s, bytes) else str(s) for s in h5["id"][()]]
    return Store(path, h5, ids, json.loads(h5.attrs["meta"]))
