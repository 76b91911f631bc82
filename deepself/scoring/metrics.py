"""Unweighted average recall (UAR) and per-class recall, from the confusion matrix."""

from __future__ import annotations

import numpy as np


def confusion(y_true, y_pred, n_classes: int) -> np.ndarray:
    """Counts (n_classes, n_classes): row = true class, column = predicted class."""
    cm = np.zeros((n_classes, n_classes), dtype=np.int64)
    np.add.at(cm, (np.asarray(y_true, dtype=np.int64), np.asarray(y_pred, dtype=np.int64)), 1)
    return cm


def recall_per_class(cm: np.ndarray) -> np.ndarray:
    """Recall of each class; NaN for a class with no true sample."""
    support = cm.sum(axis=1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(support > 0, np.diag(cm) / support, np.nan)


def uar(y_true, y_pred, n_classes: int | None = None) -> float:
    """Unweighted average recall: the mean recall over the classes present in ``y_true``.

    This is scikit-learn's ``balanced_accuracy_score``; chance level is 1 / n_classes whatever
    the class balance, which is why the field reports it.
    """
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    n = int(max(y_true.max(initial=0), y_pred.max(initial=0)) + 1) if n_classes is None else n_classes
    return float(np.nanmean(recall_per_class(confusion(y_true, y_pred, n))))
