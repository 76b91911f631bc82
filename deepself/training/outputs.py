"""A fold's files: the held-out fold's ``predictions.csv``, ``dev_predictions.csv``, ``checkpoint.pt``,
``history.csv`` and ``summary.json`` (:func:`finish`), each written whole or not at all."""

from __future__ import annotations

import json
import logging
from pathlib import Path

import numpy as np
import pandas as pd
import torch

from deepself.io.atomic import atomic_path
from deepself.scoring import predictions as scored
from deepself.scoring.metrics import uar
from deepself.training import probe
from deepself.training.data import Split, TrainingData
from deepself.training.loop import Trainer, evaluate
from deepself.training.resume import Progress

log = logging.getLogger(__name__)


def predictions_frame(data: TrainingData, index: np.ndarray, fold: str, proba: np.ndarray, name: str) -> pd.DataFrame:
    """Rows ``id, fold, label, pred, p_<class>...`` of the samples ``index`` (``predictions.csv`` of the held-out
    fold, or ``dev_predictions.csv``); ``fold`` is the held-out fold of the model that predicted them.

    Refuses probabilities that are not finite, naming the sample. No samples: the header alone.
    """
    proba = np.asarray(proba, dtype=np.float64).reshape(len(index), len(data.classes))
    ids = data.ids[index]
    y = data.y.cpu().numpy()[np.asarray(index, dtype=np.int64)]
    return scored.predictions_frame(
        ids, data.classes, proba,
        lambda i, n: (f"model {name}, fold {fold}: sample {ids[i]!r} (and {n - 1} more) got non-finite "
                      "probabilities; check its input for huge or non-finite values, or lower train.lr"),
        fold=fold, labels=[data.classes[i] for i in y])


def write_outputs(out_dir: Path, checkpoint: dict, history: list, result: dict, predictions: pd.DataFrame,
                  dev_predictions: pd.DataFrame) -> None:
    """The fold's files, each written whole or not at all."""
    with atomic_path(out_dir / "checkpoint.pt") as tmp:
        torch.save(checkpoint, tmp)
    with atomic_path(out_dir / "history.csv") as tmp:
        pd.DataFrame(history).to_csv(tmp, index=False)
    with atomic_path(out_dir / "summary.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    with atomic_path(out_dir / "dev_predictions.csv") as tmp:
        dev_predictions.to_csv(tmp, index=False)
    with atomic_path(out_dir / "predictions.csv") as tmp:
        predictions.to_csv(tmp, index=False)


HEAD_KEYS = ("alpha", "temperature", "C", "cv")  # what a fitted head's best row says of its hyperparameters


def calibration(data: TrainingData, index: np.ndarray, proba: np.ndarray, what: str) -> dict:
    """``<what>_log_loss`` and ``<what>_mean_top_probability`` of the samples ``index`` (None without samples)."""
    y = data.y.cpu().numpy()[np.asarray(index, dtype=np.int64)]
    _, loss, top = probe.scores(y, np.asarray(proba).reshape(len(y), len(data.classes)), len(data.classes))
    return {f"{what}_log_loss": None if not len(y) else loss, f"{what}_mean_top_probability": None if not len(y) else top}


def finish(t: Trainer, data: TrainingData, split: Split, spec: dict, progress: Progress,
           dev: tuple[np.ndarray, np.ndarray], out_dir: Path, seconds: float) -> dict:
    """Predict the held-out fold with the kept weights, write the fold's files; its summary.

    ``dev`` is (samples, probabilities) of ``dev_predictions.csv``: the development split at the
    kept epoch, or a fitted head's cross-validated predictions of the training part.
    """
    proba = evaluate(t, split.test, spec["train"]).numpy()
    predictions = predictions_frame(data, split.test, split.fold, proba, spec["name"])
    dev_predictions = predictions_frame(data, dev[0], split.fold, dev[1], spec["name"])
    y_test, best = data.y[split.test].cpu().numpy(), progress.best
    head = {key: best[key] for key in HEAD_KEYS if key in best}
    result = {"model": spec["name"], "fold": split.fold, "best_epoch": best["epoch"], "dev_uar": best["dev_uar"],
              "test_uar": uar(y_test, proba.argmax(1), len(data.classes)), "epochs_run": progress.epoch,
              **calibration(data, *dev, "dev"), **calibration(data, split.test, proba, "test"),
              **({"head": head} if head else {}), "n_train": len(split.fit), "n_dev": len(split.dev),
              "n_dev_predictions": len(dev[0]), "n_test": len(split.test),
              "device": str(t.forward.device), "precision": t.forward.precision, "seconds": seconds}
    checkpoint = {"model": spec["arch"], "model_args": t.model_args, "feature": spec["feature"],
                  "store_meta": data.meta, "classes": data.classes, "normalize": split.stats, "train": spec["train"],
                  "fold": split.fold, "best_epoch": best["epoch"], "dev_uar": best["dev_uar"], "head": head or None,
                  "windows": split.windows.plan.to_json() if split.windows else None,
                  "state_dict": {k: v.detach().cpu() for k, v in t.model.state_dict().items()}}
    write_outputs(out_dir, checkpoint, progress.history, result, predictions, dev_predictions)
    if head:
        log.info("fold %s: head %s chosen by cross-validation over the training part (%d of %d tried), "
                 "cross-validated UAR %.4f, held-out UAR %.4f", split.fold, _head_text(head), best["epoch"],
                 progress.epoch, best["dev_uar"], result["test_uar"])
    else:
        log.info("fold %s: best epoch %d of %d, dev UAR %.4f, held-out UAR %.4f", split.fold, best["epoch"],
                 progress.epoch, best["dev_uar"], result["test_uar"])
    log.info("fold %s: %s predictions (%d): log-loss %s, mean top probability %s; held-out: log-loss %.4f, mean top "
             "probability %.3f", split.fold, "cross-validated" if head else "development", len(dev[0]),
             _number(result["dev_log_loss"]), _number(result["dev_mean_top_probability"]), result["test_log_loss"],
             result["test_mean_top_probability"])
    return result


def _head_text(head: dict) -> str:
    """``alpha 0.001, T 0.41`` or ``C 0.1``: a fitted head's hyperparameters."""
    names = {"alpha": "alpha", "temperature": "T", "C": "C"}
    return ", ".join(f"{names[key]} {head[key]:.4g}" for key in names if key in head)


def _number(value: float | None) -> str:
    return "none" if value is None else f"{value:.4f}"
