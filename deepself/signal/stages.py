"""The filter and feature stages: a store in, a store out, in blocks of samples, parameters kept as metadata.

Each output records its parameters and the fingerprint of its input store (``input_fingerprint``).
A stage that finds its output already there, complete, made with the same parameters from an
input with the same fingerprint (and stored with the same compression), does nothing ("cache
hit"); any other file there (stale, foreign, incomplete, unreadable) is rebuilt, never used.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np

from deepself.errors import DeepselfError
from deepself.io.store import check_compression, create_store, open_store
from deepself.signal import features, filtering
from deepself.signal.params import check_params, output_shape

log = logging.getLogger(__name__)

BLOCK = 64
# Bytes of input and output samples one block may hold: blocks of long recordings (or of
# scalograms, one row per scale at every time step) get fewer samples.
BLOCK_BYTES = 256 * 2**20


def block_size(*sample_shapes) -> int:
    """Samples per block: :data:`BLOCK`, fewer when samples of these shapes exceed :data:`BLOCK_BYTES`."""
    sample_bytes = 4 * sum(int(np.prod(shape, dtype=np.int64)) for shape in sample_shapes)
    return max(1, min(BLOCK, BLOCK_BYTES // max(sample_bytes, 1)))


def _check_finite(y: np.ndarray, ids: list[str], x: np.ndarray, src, what: str, hint: str) -> None:
    """Raise naming the first sample whose output ``y`` holds inf or NaN (float32 overflow), and what to do."""
    if np.isfinite(y.min()) and np.isfinite(y.max()):
        return
    i = int(np.flatnonzero(~np.isfinite(y.reshape(len(y), -1)).all(axis=1))[0])
    peak = float(np.abs(x[i]).max())
    raise DeepselfError(f"{src}: sample {ids[i]!r}: its {what} is not finite (its signal reaches {peak:.3g}, the "
                        f"values overflow float32); {hint}")


def _as_stored(value):
    """``value`` as it reads back from the JSON of a store's meta (tuples become lists)."""
    return json.loads(json.dumps(value, sort_keys=True))


def _cached(out: str | os.PathLike, expected: dict, compression: str | None) -> dict | None:
    """The meta of ``out`` when it is a complete store with every ``expected`` meta value, else None."""
    out = Path(out)
    if not out.exists():
        return None
    try:
        with open_store(out) as store:
            meta, fingerprint, stored_compression = store.meta, store.fingerprint, store.compression
    except DeepselfError as err:
        log.warning("%s: rebuilding, the file there is not a usable store (%s)", out, err)
        return None
    if stored_compression != compression:
        reason = f"it is stored with compression {stored_compression}, {compression} is asked for"
    else:
        stale = [k for k, v in expected.items() if meta.get(k) != _as_stored(v)]
        if not stale:
            log.info("%s: cache hit (same parameters, same input %s); nothing to do", out,
                     expected["input_fingerprint"])
            return meta
        reason = f"its {', '.join(stale)} differ"
    log.warning("%s: rebuilding, the file there is stale: %s", out, reason)
    return None


def filter_store(src: str | os.PathLike, out: str | os.PathLike, band: list[float], order: int,
                 key: str = "filter", *, compression: str | None = None, cache: bool = True) -> dict:
    """Band-pass every signal of the store ``src`` into ``out`` (zero-phase Butterworth).

    Parameters
    ----------
    src, out
        Input and output stores.
    band, order
        The band-pass (see :func:`deepself.signal.filtering.bandpass`).
    key
        Config key named in error messages.
    compression : {None, "gzip", "lzf"}
        HDF5 compression of the output.
    cache : bool, default True
        Keep ``out`` when it is already this filter of this input (see the module docstring).

    Returns
    -------
    dict
        The output's metadata.
    """
    check_compression(compression, f"{key}.compression")
    with open_store(src) as store:
        meta = store.meta
        if meta["kind"] != "signal":
            raise DeepselfError(f"config key {key}: modality {meta['modality']!r} holds images, which are not filtered")
        filtering.check_band(meta["sample_rate"], band, order, key=key)
        out_meta = {**meta, "filter": {"band": list(band), "order": order}, "input_fingerprint": store.fingerprint}
        if cache:
            hit = _cached(out, {k: out_meta[k] for k in ("filter", "input_fingerprint")}, compression)
            if hit is not None:
                return hit
        with create_store(out, len(store.ids), store.x.shape[1:], out_meta, compression) as writer:
            for ids, x in store.blocks(block_size(store.x.shape[1:])):
                y = filtering.bandpass(x, meta["sample_rate"], band, order, key=key)
                _check_finite(y, ids, x, src, f"band-pass ({key})", "scale the recordings down")
                writer.write(ids, y)
    log.info("band-pass %s Hz, order %d -> %s", band, order, out)
    return _as_stored(out_meta)


def feature_store(src: str | os.PathLike, out: str | os.PathLike, name: str, spec: dict, *,
                  compression: str | None = None, cache: bool = True, backend: str = "torch",
                  device=None) -> dict:
    """Compute the feature map ``spec`` (a validated ``features.<name>`` entry) for every sample of ``src``.

    Parameters
    ----------
    src, out
        Input and output stores.
    name
        The feature's name in the config (named in error messages and stored).
    spec
        ``kind`` and the feature's parameters (``modality`` is ignored).
    compression : {None, "gzip", "lzf"}
        HDF5 compression of the output.
    cache : bool, default True
        Keep ``out`` when it is already this feature of this input (see the module docstring).
    backend, device
        As in :func:`deepself.signal.features.compute`.

    Returns
    -------
    dict
        The output's metadata; ``feature_params`` are the complete parameters.
    """
    key = f"features.{name}"
    check_compression(compression, f"{key}.compression")
    params = {k: v for k, v in spec.items() if k not in ("kind", "modality")}
    with open_store(src) as store:
        meta = store.meta
        if meta["kind"] != "signal":
            raise DeepselfError(f"config key {key}.kind: {spec['kind']} needs signals, "
                                f"modality {meta['modality']!r} holds images")
        sr, (n_channels, n_samples) = meta["sample_rate"], store.x.shape[1:]
        params = check_params(spec["kind"], params, sr, n_samples, key)
        shape = output_shape(spec["kind"], params, sr, n_samples, n_channels)
        out_meta = {**meta, "layout": "CT" if len(shape) == 2 else "CFT", "feature": name,
                    "feature_kind": spec["kind"], "feature_params": params, "input_fingerprint": store.fingerprint}
        if cache:
            expected = {k: out_meta[k] for k in ("feature", "feature_kind", "feature_params", "input_fingerprint")}
            hit = _cached(out, expected, compression)
            if hit is not None:
                return hit
        with create_store(out, len(store.ids), shape, out_meta, compression) as writer:
            hint = "scale the recordings down" + (f", or set {key}.log: true" if params.get("log") is False else "")
            block = block_size(store.x.shape[1:], shape)
            # one block of maps, filled again for each block: new memory would be page-faulted in each time
            maps = np.empty((block, *shape), dtype=np.float32) if spec["kind"] != "raw" else None
            for ids, x in store.blocks(block):
                y = features.compute(spec["kind"], x, sr, params, key, backend=backend, device=device,
                                     out=None if maps is None else maps[: len(x)])
                _check_finite(y, ids, x, src, f"{spec['kind']} map ({key})", hint)
                writer.write(ids, y)
    log.info("%s: %s %s of shape %s -> %s", name, spec["kind"], params, shape, out)
    return _as_stored(out_meta)
