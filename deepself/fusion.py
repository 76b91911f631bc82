"""Late fusion: combine the class probabilities that several models gave the same held-out samples."""

from __future__ import annotations

import json
import os

import numpy as np
import pandas as pd

from deepself.errors import DeepselfError
from deepself.io.store import atomic_path


def late_fusion(probabilities: list[np.ndarray], weights: list[float] | None = None) -> np.ndarray:
    """Weighted mean of per-model probability matrices (n_samples, n_classes); equal weights when None."""
    stack = np.stack(probabilities)
    w = np.ones(len(probabilities)) if weights is None else np.asarray(weights, dtype=np.float64)
    if (w < 0).any() or w.sum() <= 0:
        raise DeepselfError(f"fusion weights must be non-negative and not all zero, got {list(w)}")
    return np.tensordot(w / w.sum(), stack, axes=1)


def fuse_fold(prediction_paths: list[str], summary_paths: list[str], method: str,
              out: str | os.PathLike) -> pd.DataFrame:
    """Fuse the ``predictions.csv`` of several models for one fold into ``out``.

    ``method`` is ``mean`` (equal weights) or ``weighted`` (each model's development UAR in this
    fold, read from its ``summary.json``; the held-out labels are never used to weigh).
    """
    frames = [pd.read_csv(p, dtype={"id": str, "fold": str, "label": str, "pred": str}) for p in prediction_paths]
    first = frames[0]
    columns = [c for c in first.columns if c.startswith("p_")]
    for path, frame in zip(prediction_paths[1:], frames[1:]):
        if [c for c in frame.columns if c.startswith("p_")] != columns:
            raise DeepselfError(f"{path}: classes differ from {prediction_paths[0]}; fused models must share classes")
        if sorted(frame["id"]) != sorted(first["id"]):
            raise DeepselfError(f"{path}: holds other samples than {prediction_paths[0]}")
    frames = [f.set_index("id").loc[first["id"]] for f in frames]
    weights = None
    if method == "weighted":
        weights = [json.loads(open(p).read())["dev_uar"] for p in summary_paths]
    proba = late_fusion([f[columns].to_numpy() for f in frames], weights)
    classes = [c[2:] for c in columns]
    fused = pd.DataFrame({"id": first["id"], "fold": first["fold"], "label": first["label"],
                          "pred": [classes[i] for i in proba.argmax(1)]})
    fused[columns] = proba
    with atomic_path(out) as tmp:
        fused.to_csv(tmp, index=False)
    return fused

