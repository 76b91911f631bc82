"""Late fusion: combine the class probabilities that several models gave the same held-out samples."""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from deepself.errors import DeepselfError
from deepself.io.store import atomic_path

log = logging.getLogger(__name__)


def late_fusion(probabilities: list[np.ndarray], weights: list[float] | None = None) -> np.ndarray:
    """Weighted mean of per-model probability matrices (n_samples, n_classes); equal weights when None."""
    stack = np.stack(probabilities)
    w = np.ones(len(probabilities)) if weights is None else np.asarray(weights, dtype=np.float64)
    if (w < 0).any() or w.sum() <= 0:
        raise DeepselfError(f"fusion weights must be non-negative and not all zero, got {list(w)}")
    return np.tensordot(w / w.sum(), stack, axes=1)


def check_probabilities(frame: pd.DataFrame, columns: list[str], path) -> None:
    """Raise unless ``frame`` has class probability columns, each cell a finite number.

    Parameters
    ----------
    frame : pandas.DataFrame
        Predictions with ``id``, ``fold`` and ``p_<class>`` columns.
    columns : list of str
        Its ``p_<class>`` columns.
    path
        The file the predictions come from or go to, named in the error.

    Raises
    ------
    DeepselfError
        Naming the file, the model (its folder), the fold and the first sample with an empty or
        non-finite probability.
    """
    if not columns:
        raise DeepselfError(f"{path}: holds no class probabilities (no p_<class> columns); train the model again")
    values = frame[columns].apply(pd.to_numeric, errors="coerce").to_numpy(dtype=np.float64)
    bad = ~np.isfinite(values).all(axis=1)
    if bad.any():
        row = frame[bad].iloc[0]
        model = Path(path).parent.parent.name
        raise DeepselfError(f"{path}: model {model!r}, fold {row['fold']!r}, sample {row['id']!r}: a class probability "
                            "is empty or not finite; look at that sample's input (a NaN or overflowing value) and "
                            "train the model again")


def top_members(dev_uars: list[float], top: int | None) -> list[int]:
    """Indices of the ``top`` members with the highest development UAR, in their given order.

    Ties go to the member named first; ``None`` keeps every member.
    """
    if top is None:
        return list(range(len(dev_uars)))
    if not 1 <= top <= len(dev_uars):
        raise DeepselfError(f"fusion top: {top} must be between 1 and the number of models ({len(dev_uars)})")
    ranked = sorted(range(len(dev_uars)), key=lambda i: (-dev_uars[i], i))
    return sorted(ranked[:top])


def fuse_fold(prediction_paths: list[str], summary_paths: list[str], method: str,
              out: str | os.PathLike, top: int | None = None) -> pd.DataFrame:
    """Fuse the ``predictions.csv`` of several models for one fold into ``out``.

    ``method`` is ``mean`` (equal weights) or ``weighted`` (each model's development UAR in this
    fold, read from its ``summary.json``; the held-out labels are never used to weigh). With
    ``top``, only the ``top`` members with the highest development UAR in this fold are fused (a
    choice made on the development split, fold by fold), and the log names them.
    """
    frames = [pd.read_csv(p, dtype={"id": str, "fold": str, "label": str, "pred": str}) for p in prediction_paths]
    first = frames[0]
    columns = [c for c in first.columns if c.startswith("p_")]
    for path, frame in zip(prediction_paths, frames):
        check_probabilities(frame, [c for c in frame.columns if c.startswith("p_")], path)
    for path, frame in zip(prediction_paths[1:], frames[1:]):
        if [c for c in frame.columns if c.startswith("p_")] != columns:
            raise DeepselfError(f"{path}: classes differ from {prediction_paths[0]}; fused models must share classes")
        if sorted(frame["id"]) != sorted(first["id"]):
            raise DeepselfError(f"{path}: holds other samples than {prediction_paths[0]}")
    frames = [f.set_index("id").loc[first["id"]] for f in frames]
    dev_uars = [float(json.loads(Path(p).read_text())["dev_uar"]) for p in summary_paths] \
        if method == "weighted" or top is not None else [0.0] * len(frames)
    keep = top_members(dev_uars, top)
    if top is not None:
        log.info("fusing the %d of %d models with the highest development UAR: %s", top, len(frames),
                 ", ".join(f"{Path(summary_paths[i]).parent.parent.name} ({dev_uars[i]:.3f})" for i in keep))
    frames = [frames[i] for i in keep]
    weights = [dev_uars[i] for i in keep] if method == "weighted" else None
    proba = late_fusion([f[columns].to_numpy() for f in frames], weights)
    classes = [c[2:] for c in columns]
    fused = pd.DataFrame({"id": first["id"], "fold": first["fold"], "label": first["label"],
                          "pred": [classes[i] for i in proba.argmax(1)]})
    fused[columns] = proba
    check_probabilities(fused, columns, out)
    with atomic_path(out) as tmp:
        fused.to_csv(tmp, index=False)
    return fused

