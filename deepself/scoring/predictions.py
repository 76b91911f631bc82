"""The predictions frame: one row per sample, ``id, [fold,] [label,] pred, p_<class>...``.

Training writes it (``predictions.csv`` of the held-out fold, ``dev_predictions.csv``), the fuse
stage reads and writes it, the report reads it, ``deepself predict`` writes it for new samples.
:func:`predictions_frame` builds it, refusing non-finite probabilities; :func:`read_frame` reads
one file with its text columns as text (ids such as ``007`` stay ids); :func:`check_probabilities`
checks the probabilities of a file read back.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
import pandas as pd

from deepself.errors import DeepselfError

# the columns of a predictions file read as text, whatever they look like
TEXT_COLUMNS = {"id": str, "fold": str, "label": str, "pred": str}


def read_frame(path) -> pd.DataFrame:
    """One predictions file (``predictions.csv``, ``dev_predictions.csv``), ids, folds and labels as text."""
    return pd.read_csv(path, dtype=TEXT_COLUMNS)


def read_predictions(paths: list[str]) -> pd.DataFrame:
    """The ``predictions.csv`` of a system's folds, as one frame (ids, folds and labels as text)."""
    return pd.concat([read_frame(p) for p in paths], ignore_index=True)


def fold_order(folds) -> list[str]:
    """The distinct folds, in their natural order (``2`` before ``10``)."""
    return sorted(set(folds), key=lambda f: (len(f), f))


def predictions_frame(ids, classes: list[str], proba: np.ndarray, on_non_finite: Callable[[int, int], str], *,
                      fold=None, labels=None) -> pd.DataFrame:
    """Rows ``id, [fold,] [label,] pred, p_<class>...``: ``pred`` is the class of the highest probability.

    Parameters
    ----------
    ids
        The samples' ids, in the rows' order.
    classes : list of str
        The class names, in the order of ``proba``'s columns.
    proba : numpy.ndarray
        (n_samples, n_classes) class probabilities, written as they are (dtype kept).
    on_non_finite : callable
        ``(position of the first row with a non-finite probability, number of such rows)`` -> the
        message of the :class:`DeepselfError` raised: probabilities that are not finite are refused.
    fold
        The ``fold`` column (one value or one per sample); None: no such column.
    labels
        The ``label`` column; None: no such column.

    Returns
    -------
    pandas.DataFrame
        The frame; no samples: the header alone.
    """
    bad = ~np.isfinite(proba).all(axis=1)
    if bad.any():
        raise DeepselfError(on_non_finite(int(np.flatnonzero(bad)[0]), int(bad.sum())))
    columns = {"id": ids, "fold": fold, "label": labels, "pred": [classes[i] for i in proba.argmax(1)]}
    columns = {k: v for k, v in columns.items() if v is not None}
    frame = pd.DataFrame(columns, columns=list(columns))
    for c, label in enumerate(classes):
        frame[f"p_{label}"] = proba[:, c]
    return frame


def probability_error(path, fold, sample) -> str:
    """The message for a sample of the predictions file ``path`` with an empty or non-finite probability."""
    model = Path(path).parent.parent.name
    return (f"{path}: model {model!r}, fold {fold!r}, sample {sample!r}: a class probability is empty or not "
            "finite; look at that sample's input (a NaN or overflowing value) and train the model again")


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
        raise DeepselfError(probability_error(path, row["fold"], row["id"]))
