"""Late fusion: combine the class probabilities that several models gave the same held-out samples.

A fusion is a weight per member and fold; the fused probabilities are the weighted mean of the
members' probabilities. :func:`~deepself.scoring.selection.member_weights` chooses the weights of one fold:

- ``mean``: equal weights;
- ``weighted``: each member's development UAR in the fold (its ``summary.json``);
- ``select``: ensemble selection (Caruana et al., 2004, as AutoGluon's WeightedEnsemble and
  auto-sklearn's EnsembleSelection), learnt on the members' out-of-sample predictions of the
  fold's training part (``dev_predictions.csv``), never on the held-out fold's labels;

and ``top`` first keeps the ``top`` members with the highest development UAR (for ``select``: the
candidates it may pick). The fuse stage writes the weights of each fold to ``weights.json`` beside
its ``predictions.csv``; ``deepself predict --fusion`` applies those very weights to new samples.
"""

from __future__ import annotations

import json
import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from deepself.errors import DeepselfError
from deepself.io.atomic import atomic_path
from deepself.scoring.predictions import check_probabilities, predictions_frame, probability_error, read_frame
from deepself.scoring.selection import DEFAULT_ROUNDS, member_weights

log = logging.getLogger(__name__)

MIN_DEV_PER_CLASS = 1  # development samples of every class that select needs (a small set: 1 a class)


def late_fusion(probabilities: list[np.ndarray], weights: list[float] | None = None) -> np.ndarray:
    """Weighted mean of per-model probability matrices (n_samples, n_classes); equal weights when None."""
    stack = np.stack(probabilities)
    w = np.ones(len(probabilities)) if weights is None else np.asarray(weights, dtype=np.float64)
    if (w < 0).any() or w.sum() <= 0:
        raise DeepselfError(f"fusion weights must be non-negative and not all zero, got {list(w)}")
    return np.tensordot(w / w.sum(), stack, axes=1)


def _read_dev(path: str, columns: list[str], held_out: set[str]) -> pd.DataFrame:
    """One member's ``dev_predictions.csv``, indexed by id, checked against the held-out fold's predictions."""
    if not Path(path).exists():
        raise DeepselfError(f"{path}: no such file; method select learns its weights from every member's "
                            "development predictions, which training writes: run the workflow (snakemake) again")
    frame = read_frame(path)
    if "id" not in frame.columns or "label" not in frame.columns:
        raise DeepselfError(f"{path}: needs the columns id, label and p_<class> (as predictions.csv); train again")
    if [c for c in frame.columns if c.startswith("p_")] != columns:
        raise DeepselfError(f"{path}: classes differ from the held-out predictions.csv ({', '.join(columns)}); "
                            "train the model again")
    check_probabilities(frame, columns, path)
    classes = [c[2:] for c in columns]
    for what, bad in (("is listed twice", frame["id"].duplicated()),
                      ("is of the held-out fold", frame["id"].isin(held_out)),
                      ("has a label that is not a class", ~frame["label"].isin(classes))):
        if bad.any():
            raise DeepselfError(f"{path}: sample {frame['id'][bad].iloc[0]!r} {what}; development predictions "
                                "must be of the fold's training part, once each: train the model again")
    return frame.set_index("id")


def read_dev_predictions(paths: list[str], columns: list[str],
                         held_out: set[str]) -> tuple[list[np.ndarray], np.ndarray, list[str]]:
    """The members' ``dev_predictions.csv`` on the samples all of them predicted.

    Parameters
    ----------
    paths : list of str
        Each member's ``models/<m>/fold<k>/dev_predictions.csv``, in member order.
    columns : list of str
        The ``p_<class>`` columns of the held-out predictions (same classes, same order).
    held_out : set of str
        The held-out fold's ids, which none of these may hold (only their ids are read, never their labels).

    Returns
    -------
    tuple
        Each member's probabilities (rows: the shared ids), the true class indices, the shared ids.

    Raises
    ------
    DeepselfError
        Naming the file when one is missing or malformed, when members disagree on a label, or when
        the shared samples hold fewer than :data:`MIN_DEV_PER_CLASS` of a class.
    """
    frames = [_read_dev(p, columns, held_out) for p in paths]
    shared = set.intersection(*(set(f.index) for f in frames))
    ids = [i for i in frames[0].index if i in shared]
    labels = frames[0].loc[ids, "label"]
    for path, frame in zip(paths[1:], frames[1:]):
        differ = frame.loc[ids, "label"] != labels
        if differ.any():
            raise DeepselfError(f"{path}: sample {differ.idxmax()!r} has another label than in {paths[0]}; "
                                "the members must learn from the same sample sheet: train them again")
    classes = [c[2:] for c in columns]
    counts = labels.value_counts()
    short = [c for c in classes if counts.get(c, 0) < MIN_DEV_PER_CLASS]
    if short:
        raise DeepselfError(f"{', '.join(paths)}: the {len(ids)} development samples that every member predicted "
                            f"hold {counts.get(short[0], 0)} of class {short[0]!r}; method select needs at least "
                            f"{MIN_DEV_PER_CLASS} of every class: raise cv.dev_fraction, or use method mean or "
                            "weighted")
    y = np.array([classes.index(label) for label in labels], dtype=np.int64)
    return [f.loc[ids, columns].to_numpy(dtype=np.float64) for f in frames], y, ids


# --- the fuse stage: one fold ---------------------------------------------------------------------

def member_names(prediction_paths: list[str]) -> list[str]:
    """``models/<m>/fold<k>/predictions.csv`` -> ``m``; the paths themselves when those names repeat."""
    names = [Path(p).parent.parent.name for p in prediction_paths]
    return names if len(set(names)) == len(names) else [str(p) for p in prediction_paths]


def _read_predictions(path: str) -> pd.DataFrame:
    """A member's ``predictions.csv``, or one line naming the file when it is missing or unreadable."""
    try:
        return read_frame(path)
    except FileNotFoundError:
        raise DeepselfError(f"{path}: no such file; run the workflow (snakemake) again to train that model") from None
    except (OSError, ValueError, pd.errors.ParserError) as err:
        raise DeepselfError(f"{path}: not a readable predictions file ({err}); run the workflow (snakemake) again "
                            "to train that model") from None


def _read_held_out(prediction_paths: list[str]) -> tuple[list[pd.DataFrame], list[str]]:
    """The members' held-out ``predictions.csv``, rows in the first one's order, and their ``p_<class>`` columns."""
    frames = [_read_predictions(p) for p in prediction_paths]
    first = frames[0]
    columns = [c for c in first.columns if c.startswith("p_")]
    for path, frame in zip(prediction_paths, frames):
        check_probabilities(frame, [c for c in frame.columns if c.startswith("p_")], path)
    for path, frame in zip(prediction_paths[1:], frames[1:]):
        if [c for c in frame.columns if c.startswith("p_")] != columns:
            raise DeepselfError(f"{path}: classes differ from {prediction_paths[0]}; fused models must share classes")
        if sorted(frame["id"]) != sorted(first["id"]):
            raise DeepselfError(f"{path}: holds other samples than {prediction_paths[0]}")
    return [f.set_index("id", drop=False).loc[first["id"]] for f in frames], columns


def weights_record(names: list[str], weights: np.ndarray, method: str, top: int | None, rounds: int,
                   dev_uars: list[float] | None, info: dict) -> dict:
    """What ``weights.json`` holds: the fusion's settings, each member's weight, and how they were chosen."""
    record = {"method": method, "top": top, "rounds": rounds if method == "select" else None,
              "weights": {n: float(w) for n, w in zip(names, weights)},
              "dev_uar": None if dev_uars is None else dict(zip(names, dev_uars))}
    if method == "select":
        record["selection"] = {"n_samples": info["n_samples"], "rounds_kept": info["rounds_kept"],
                               "dev_uar": info["dev_uar"], "dev_log_loss": info["dev_log_loss"],
                               "member_dev_uar": dict(zip(names, info["member_dev_uar"]))}
    return record


def _log_weights(record: dict, fold: str) -> None:
    chosen = ", ".join(f"{n} {w:.3f}" for n, w in record["weights"].items())
    how = record["method"] + ("" if record["top"] is None else f", top {record['top']}")
    if record["method"] == "select":
        s = record["selection"]
        how += (f", round {s['rounds_kept']} of {record['rounds']} kept: UAR {s['dev_uar']:.3f} on the "
                f"{s['n_samples']} development samples")
    log.info("fold %s: fusion weights %s (%s)", fold, chosen, how)


def fuse_fold(prediction_paths: list[str], summary_paths: list[str], method: str, out: str | os.PathLike,
              top: int | None = None, dev_prediction_paths: list[str] | None = None,
              rounds: int = DEFAULT_ROUNDS, weights_out: str | os.PathLike | None = None) -> pd.DataFrame:
    """Fuse the ``predictions.csv`` of several models for one fold into ``out``; the weights into ``weights_out``.

    The weights are :func:`~deepself.scoring.selection.member_weights`'s: ``mean``; ``weighted``
    by each model's development UAR in this fold (its ``summary.json``); ``select``, learnt on the models'
    ``dev_prediction_paths`` (their ``dev_predictions.csv``, same order). ``top`` keeps the
    ``top`` models with the highest development UAR. The held-out labels are never used to weigh.
    ``weights_out`` (default: ``weights.json`` beside ``out``) records them for ``deepself predict``.
    """
    frames, columns = _read_held_out(prediction_paths)
    names = member_names(prediction_paths)
    dev_uars = ([float(json.loads(Path(p).read_text())["dev_uar"]) for p in summary_paths]
                if method == "weighted" or top is not None else None)
    dev = None
    if method == "select":
        if not dev_prediction_paths or len(dev_prediction_paths) != len(prediction_paths):
            raise DeepselfError("fusion method select: give every model's dev_predictions.csv (--dev-predictions), "
                                "in the order of --predictions")
        dev = read_dev_predictions(dev_prediction_paths, columns, set(frames[0]["id"]))
    weights, info = member_weights(method, len(frames), dev_uars, top, dev[:2] if dev else None, rounds)
    info["n_samples"] = len(dev[2]) if dev else None
    proba = late_fusion([f[columns].to_numpy(dtype=np.float64) for f in frames], weights)
    first, classes = frames[0], [c[2:] for c in columns]
    ids, fold = first["id"].to_numpy(), first["fold"].to_numpy()
    fused = predictions_frame(ids, classes, proba, lambda i, n: probability_error(out, fold[i], ids[i]),
                              fold=fold, labels=first["label"].to_numpy())
    record = weights_record(names, weights, method, top, rounds, dev_uars, info)
    _log_weights(record, str(first["fold"].iloc[0]))
    with atomic_path(Path(out).parent / "weights.json" if weights_out is None else weights_out) as tmp:
        tmp.write_text(json.dumps(record, indent=2))
    with atomic_path(out) as tmp:
        fused.to_csv(tmp, index=False)
    return fused


def read_weights(path: str | os.PathLike, members: list[str], spec: dict) -> np.ndarray:
    """The weights a fuse stage wrote to ``weights.json``, in ``members``' order.

    Parameters
    ----------
    path
        ``fusions/<fusion>/fold<k>/weights.json``.
    members : list of str
        The fusion's models, as the config lists them.
    spec : dict
        The fusion's config (``method``, ``top``, ``rounds``): the file must have been written for it.

    Returns
    -------
    numpy.ndarray
        The weights exactly as written (they sum to 1), for :func:`late_fusion`.

    Raises
    ------
    DeepselfError
        Naming the file when it is unreadable or was written for other settings or models.
    """
    rerun = "run the workflow (snakemake) again so that the fuse stage rewrites it"
    try:
        record = json.loads(Path(path).read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise DeepselfError(f"{path}: cannot be read ({err}); {rerun}") from None
    method = spec.get("method", "mean")
    expected = {"method": method, "top": spec.get("top"),
                "rounds": spec.get("rounds", DEFAULT_ROUNDS) if method == "select" else None}
    found = {k: record.get(k) for k in expected} if isinstance(record, dict) else {}
    weights = record.get("weights") if isinstance(record, dict) else None
    if found != expected or not isinstance(weights, dict) or sorted(weights) != sorted(members):
        raise DeepselfError(f"{path}: written for another fusion ({found}, models "
                            f"{', '.join(weights) if isinstance(weights, dict) else '?'}) than config.json's "
                            f"({expected}, models {', '.join(members)}); {rerun}")
    w = np.array([weights[m] for m in members], dtype=np.float64)
    if not np.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
        raise DeepselfError(f"{path}: weights {list(w)} must be finite, non-negative and not all zero; {rerun}")
    return w  # as the fuse stage gave them to late_fusion: the same fused probabilities, to the last bit
