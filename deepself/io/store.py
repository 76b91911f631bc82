"""HDF5 store shared by every stage: one array per sample, ids beside them, metadata as attributes.

Layout of a store file::

    /x     float32 (N, *sample_shape), chunked one sample per chunk (training reads single samples),
           optionally compressed (gzip or lzf)
    /id    utf-8 strings (N,), the sample ids of the sample sheet, in its order
    attrs  "meta": a JSON object saying what the arrays are and how they were made
           "fingerprint": "sha256:<hex>" of the meta, the ids and the sample bytes (see
           :func:`fingerprint_of`), written last, so only a complete store has one

Files are written under a temporary name in the same folder and renamed when complete
(:func:`deepself.io.atomic.atomic_path`), so an interrupted stage never leaves a file that looks
finished. The fingerprint is computed while the samples are written (no second read); a later
stage records its input's fingerprint and so knows whether a result it finds on disk was made from
the same data.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator

import numpy as np

from deepself.errors import DeepselfError
from deepself.io.atomic import atomic_path

COMPRESSIONS = (None, "gzip", "lzf")
_FINGERPRINT_VERSION = b"deepself-store-fingerprint/1\0"
_READ_BLOCK_BYTES = 64 * 2**20


class _Fingerprint:
    """sha256 of a store's content, fed block by block: the same for any split into blocks."""

    def __init__(self, meta_json: str, n: int, sample_shape: tuple[int, ...]):
        self._head = _FINGERPRINT_VERSION + json.dumps(
            {"meta": meta_json, "n": n, "sample_shape": list(sample_shape), "dtype": "<f4"}
        ).encode()
        self._ids = hashlib.sha256()
        self._x = hashlib.sha256()

    def update(self, ids: list[str], x: np.ndarray) -> None:
        for sid in ids:
            encoded = sid.encode()
            self._ids.update(len(encoded).to_bytes(8, "little") + encoded)
        self._x.update(np.ascontiguousarray(x, dtype="<f4"))

    def hexdigest(self) -> str:
        total = hashlib.sha256(self._head + self._ids.digest() + self._x.digest())
        return "sha256:" + total.hexdigest()


class StoreWriter:
    """Writes samples one block at a time into an open HDF5 file (see :func:`create_store`)."""

    def __init__(self, h5: h5py.File, n: int, sample_shape: tuple[int, ...], compression: str | None,
                 meta_json: str = "{}"):
        chunked = n > 0 and all(sample_shape)
        self._x = h5.create_dataset(
            "x",
            shape=(n, *sample_shape),
            dtype="float32",
            chunks=(1, *sample_shape) if chunked else None,
            compression=compression if chunked else None,
        )
        import h5py

        self._id = h5.create_dataset("id", shape=(n,), dtype=h5py.string_dtype())
        self._fingerprint = _Fingerprint(meta_json, n, sample_shape)
        self.sample_shape = sample_shape
        self.n = n
        self.filled = 0

    def write(self, ids: list[str], x: np.ndarray) -> None:
        """Append a block of samples ``x`` (len(ids), *sample_shape) with their ids."""
        k = len(ids)
        x = np.ascontiguousarray(x, dtype=np.float32)
        if x.shape != (k, *self.sample_shape):
            raise ValueError(f"a block of {k} ids needs samples of shape {(k, *self.sample_shape)}, got {x.shape}")
        if self.filled + k > self.n:
            raise ValueError(f"the store holds {self.n} samples; {self.filled} written, {k} more given")
        self._x[self.filled : self.filled + k] = x
        self._id[self.filled : self.filled + k] = ids
        self._fingerprint.update(list(ids), x)
        self.filled += k

    def fingerprint(self) -> str:
        """The content fingerprint of what has been written so far."""
        return self._fingerprint.hexdigest()


def check_compression(compression, key: str = "compression") -> None:
    """Raise unless ``compression`` is one of :data:`COMPRESSIONS`."""
    if compression not in COMPRESSIONS:
        raise DeepselfError(f"{key}: {compression!r} is not one of none, gzip, lzf")


@contextlib.contextmanager
def create_store(
    path: str | os.PathLike,
    n: int,
    sample_shape: tuple[int, ...],
    meta: dict,
    compression: str | None = None,
) -> Iterator[StoreWriter]:
    """Create a store of ``n`` samples atomically; every sample must be written before the block ends.

    Parameters
    ----------
    path
        The store file. Written under a temporary name beside it and renamed at the end: if the
        block raises, or fewer than ``n`` samples were written, no file appears at ``path`` (and
        a file already there is left as it was).
    n
        Number of samples.
    sample_shape
        Shape of one sample.
    meta
        JSON-serialisable metadata, stored as the attribute ``meta``.
    compression : {None, "gzip", "lzf"}
        HDF5 filter of the sample chunks; the fingerprint does not depend on it.

    Yields
    ------
    StoreWriter
        Call ``write(ids, x)`` block by block, in sample order.
    """
    check_compression(compression)
    meta_json = json.dumps(meta, sort_keys=True)
    with atomic_path(path) as tmp:
        # h5py here, not at the top: a job that opens no store should not pay its import
        import h5py

        with h5py.File(tmp, "w") as h5:
            h5.attrs["meta"] = meta_json
            writer = StoreWriter(h5, n, tuple(int(s) for s in sample_shape), compression, meta_json)
            yield writer
            if writer.filled != n:
                raise RuntimeError(f"{path}: {writer.filled} of {n} samples written")
            h5.attrs["fingerprint"] = writer.fingerprint()


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

    @property
    def fingerprint(self) -> str:
        """The content fingerprint recorded when the store was written."""
        value = self.h5.attrs["fingerprint"]
        return value.decode() if isinstance(value, bytes) else str(value)

    @property
    def compression(self) -> str | None:
        return self.x.compression

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
        out = np.empty((len(ids), *self.x.shape[1:]), dtype=np.float32)
        # Sample by sample: h5py's list indexing reads the same rows about 30 times slower.
        for i, sid in enumerate(ids):
            out[i] = self.x[index[sid]]
        return out

    def blocks(self, size: int) -> Iterator[tuple[list[str], np.ndarray]]:
        """Yield ``(ids, x)`` for consecutive blocks of at most ``size`` samples, in store order."""
        for start in range(0, len(self.ids), size):
            yield self.ids[start : start + size], self.x[start : start + size]

    def close(self) -> None:
        self.h5.close()

    def __enter__(self) -> "Store":
        return self

    def __exit__(self, *exc) -> None:
        self.close()


class CorruptStore(DeepselfError):
    """A store file that cannot be trusted: unreadable, unfinished, or changed since it was written."""


def _quarantine(path: Path, reason: str) -> CorruptStore:
    """Move the untrustworthy store ``path`` aside (nothing is deleted) and return the error to raise.

    Every store of a results folder is made by a stage from the data: with the file gone from its
    name, the next run of the workflow sees it missing and rebuilds it and what was made from it.
    """
    aside = path.with_name(path.name + ".corrupt")
    try:
        os.replace(path, aside)
    except OSError as err:
        return CorruptStore(f"{path}: {reason}; it could not be moved aside ({err}): delete it, then run again "
                            "to rebuild it")
    return CorruptStore(f"{path}: {reason}; moved to {aside.name} beside it: run again (snakemake) to rebuild it "
                        "and everything made from it")


def open_store(path: str | os.PathLike, verify: bool = True) -> Store:
    """Open a store written by :func:`create_store` for reading.

    Parameters
    ----------
    path
        The store file.
    verify : bool, default True
        Recompute the content fingerprint (one sequential read of every sample, about 1 GB/s
        of SHA-256 here; see benchmarks/README.md, "Verifying stores") and compare it with the
        one written with the store, so that a store changed on disk (a flipped byte, a chunk
        overwritten) is found where it is read instead of giving silently different results.

    Raises
    ------
    CorruptStore
        When the file is not a readable HDF5 file, lacks what :func:`create_store` writes (an
        unfinished or foreign file), or its content does not match its fingerprint. The file is
        first moved aside to ``<name>.corrupt``, so that the workflow rebuilds it on its next run.
    DeepselfError
        When there is no file at ``path``.
    """
    path = Path(path)
    if not path.exists():
        raise DeepselfError(f"{path}: no such store file")
    try:
        import h5py

        h5 = h5py.File(path, "r")
    except OSError as err:
        raise _quarantine(path, f"not a readable HDF5 store ({err})") from None
    # create_store writes the fingerprint last: a file without one was not finished by deepself.
    if "x" not in h5 or "id" not in h5 or "meta" not in h5.attrs or "fingerprint" not in h5.attrs:
        h5.close()
        raise _quarantine(path, "not a deepself store (needs datasets x, id and attributes meta, fingerprint)")
    try:
        ids = [s.decode() if isinstance(s, bytes) else str(s) for s in h5["id"][()]]
        store = Store(path, h5, ids, json.loads(h5.attrs["meta"]))
        actual = _content_fingerprint(store) if verify else store.fingerprint
    except (OSError, ValueError, KeyError) as err:  # h5py's errors on damaged chunks, bad JSON
        h5.close()
        raise _quarantine(path, f"not a readable deepself store ({err})") from None
    if actual != store.fingerprint:
        written = store.fingerprint
        store.close()
        raise _quarantine(path, f"its content does not match the fingerprint written with it ({written}, "
                                f"now {actual}): the file was changed after deepself wrote it")
    return store


def _content_fingerprint(store: Store) -> str:
    sample_shape = tuple(store.x.shape[1:])
    fingerprint = _Fingerprint(store.h5.attrs["meta"], len(store.ids), sample_shape)
    sample_bytes = 4 * int(np.prod(sample_shape, dtype=np.int64))
    for ids, x in store.blocks(max(1, _READ_BLOCK_BYTES // max(sample_bytes, 1))):
        fingerprint.update(ids, x)
    return fingerprint.hexdigest()


def fingerprint_of(path: str | os.PathLike) -> str:
    """Recompute a store's content fingerprint from its file (reads every sample once).

    Equals the ``fingerprint`` attribute that :func:`create_store` wrote, unless the file was
    changed since (which :func:`open_store` checks by default).
    """
    with open_store(path, verify=False) as store:
        return _content_fingerprint(store)
