"""The filter and feature stages: a store in, a store out, in blocks of samples, parameters kept as metadata."""

from __future__ import annotations

import logging
import os

from deepself.errors import DeepselfError
from deepself.io.store import create_store, open_store
from deepself.signal import features, filtering

log = logging.getLogger(__name__)

BLOCK = 64


def filter_store(src: str | os.PathLike, out: str | os.PathLike, band: list[float], order: int,
                 key: str = "filter") -> dict:
    """Band-pass every signal of the store ``src`` into ``out`` (zero-phase Butterworth)."""
    with open_store(src) as store:
        meta = store.meta
        if meta["kind"] != "signal":
            raise DeepselfError(f"config key {key}: modality {meta['modality']!r} holds images, which are not filtered")
        filtering.check_band(meta["sample_rate"], band, order, key=key)
        out_meta = {**meta, "filter": {"band": list(band), "order": order}}
        with create_store(out, len(store.ids), store.x.shape[1:], out_meta) as writer:
            for start in range(0, len(store.ids), BLOCK):
                x = store.x[start : start + BLOCK]
                writer.write(store.ids[start : start + BLOCK],
                             filtering.bandpass(x, meta["sample_rate"], band, order, key=key))
    log.info("band-pass %s Hz, order %d -> %s", band, order, out)
    return out_meta


def feature_store(src: str | os.PathLike, out: str | os.PathLike, name: str, spec: dict) -> dict:
    """Compute the feature map ``spec`` (a validated ``features.<name>`` entry) for every sample of ``src``."""
    key = f"features.{name}"
    params = {k: v for k, v in spec.items() if k not in ("kind", "modality")}
    with open_store(src) as store:
        meta = store.meta
        if meta["kind"] != "signal":
            raise DeepselfError(f"config key {key}.kind: {spec['kind']} needs signals, "
                                f"modality {meta['modality']!r} holds images")
        sr, (n_channels, n_samples) = meta["sample_rate"], store.x.shape[1:]
        params = features.check_params(spec["kind"], params, sr, n_samples, key)
        shape = features.output_shape(spec["kind"], params, sr, n_samples, n_channels)
        out_meta = {**meta, "layout": "CT" if len(shape) == 2 else "CFT", "feature": name,
                    "feature_kind": spec["kind"], "feature_params": params}
        with create_store(out, len(store.ids), shape, out_meta) as writer:
            for start in range(0, len(store.ids), BLOCK):
                x = features.compute(spec["kind"], store.x[start : start + BLOCK], sr, params)
                writer.write(store.ids[start : start + BLOCK], x)
    log.info("%s: %s %s of shape %s -> %s", name, spec["kind"], params, shape, out)
    return out_meta
