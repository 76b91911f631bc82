"""Late fusion: combine the class probabilities that several models gave the same held-out samples.

A fusion is a weight per member and fold; the fused probabilities are the weighted mean of the
members' probabilities. :func:`member_weights` chooses the weights of one fold:

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
import math
import os
from pathlib import Path

import numpy as np
import pandas as pd

from deepself.errors import DeepselfError
from deepself.io.store import atomic_path
from deepself.metrics import uar

log = logging.getLogger(__name__)

METHODS = ("mean", "weighted", "select")
DEFAULT_ROUNDS = 25  # as AutoGluon's WeightedEnsemble (auto-sklearn uses 50)
MIN_DEV_PER_CLASS = 1  # development samples of every class that select needs (a small set: 1 a class)
_READ_AS_TEXT = {"id": str, "fold": str, "label": str, "pred": str}


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


# --- ensemble selection ---------------------------------------------------------------------------

def log_loss(proba: np.ndarray, y: np.ndarray) -> float:
    """Mean negative log-probability of the true classes ``y`` (probabilities clipped at 1e-15)."""
    return float(-np.mean(np.log(np.clip(proba[np.arange(len(y)), y], 1e-15, None))))


def _score(proba: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    """(UAR, log-loss) of ``proba`` against ``y``: the order ensemble selection ranks by."""
    return uar(y, proba.argmax(1), proba.shape[1]), log_loss(proba, y)


def _rank(score: tuple[float, float], order: int) -> tuple:
    """Sort key of a score: higher UAR, then lower log-loss (to 1e-12: the same ensemble summed in another
    order is a tie), then ``order``."""
    return -score[0], round(score[1], 12), order


def ensemble_selection(probabilities: list[np.ndarray], y: np.ndarray, rounds: int = DEFAULT_ROUNDS) -> dict:
    """Greedy forward selection with replacement of the members whose mean probabilities score best.

    Each round adds to the ensemble the member (repeats allowed) whose addition gives the averaged
    probabilities the highest UAR on ``y``; ties go to the lower log-loss, then to the member
    given first. The first round therefore picks the single best member. The ensemble kept is that
    of the first round that reaches the highest UAR (AutoGluon keeps the first best round of its
    trajectory too), so that it is never worse than the best member on these predictions, and a
    blend is kept only where it raises the UAR: where the best member alone is as good (a small
    development split often scores several members perfect), a lower log-loss of a blend on a few
    samples is no reason to move weight onto weaker members.

    Parameters
    ----------
    probabilities : list of numpy.ndarray
        Each member's out-of-sample probabilities (n_samples, n_classes), rows aligned.
    y : numpy.ndarray
        The samples' true class indices.
    rounds : int
        Number of rounds (members added, counting repeats).

    Returns
    -------
    dict
        ``weights`` (numpy.ndarray: times picked / rounds kept, summing to 1), ``rounds_kept``,
        ``dev_uar`` and ``dev_log_loss`` of the kept ensemble, ``member_dev_uar`` (each member alone).
    """
    if rounds < 1:
        raise DeepselfError(f"fusion rounds (config key fusions.<name>.rounds, --rounds): {rounds} must be "
                            "at least 1")
    total, counts = np.zeros_like(probabilities[0], dtype=np.float64), np.zeros(len(probabilities))
    trajectory = []
    for r in range(1, rounds + 1):
        scores = [_score((total + p) / r, y) for p in probabilities]
        best = min(range(len(probabilities)), key=lambda i: _rank(scores[i], i))
        total, counts[best] = total + probabilities[best], counts[best] + 1
        trajectory.append((scores[best], counts.copy()))
    best_uar = max(score[0] for score, _ in trajectory)
    kept = next(r for r, (score, _) in enumerate(trajectory) if score[0] == best_uar)
    (dev_uar, dev_loss), picked = trajectory[kept]
    return {"weights": picked / picked.sum(), "rounds_kept": kept + 1, "dev_uar": dev_uar, "dev_log_loss": dev_loss,
            "member_dev_uar": [_score(p, y)[0] for p in probabilities]}


# --- the weights of one fold ----------------------------------------------------------------------

def member_weights(method: str, n_members: int, dev_uars: list[float] | None = None, top: int | None = None,
                   dev: tuple[list[np.ndarray], np.ndarray] | None = None,
                   rounds: int = DEFAULT_ROUNDS) -> tuple[np.ndarray, dict]:
    """The weight of every member in one fold (summing to 1; 0 for a member left out).

    Parameters
    ----------
    method : str
        ``mean``, ``weighted`` or ``select`` (see the module's docstring).
    n_members : int
        Number of members.
    dev_uars : list of float, optional
        Each member's development UAR in the fold (``summary.json``): needed by ``weighted`` and ``top``.
    top : int, optional
        Keep only the ``top`` members with the highest development UAR; for ``select``, the
        candidates it picks from.
    dev : tuple, optional
        ``select`` only: each member's out-of-sample probabilities of the training part, rows
        aligned, and the true class indices (:func:`read_dev_predictions`).
    rounds : int
        ``select`` only: rounds of ensemble selection.

    Returns
    -------
    tuple
        The weights (numpy.ndarray, member order) and, for ``select``, what
        :func:`ensemble_selection` reports besides (``member_dev_uar`` of every member, ``None``
        for one not a candidate), else an empty dict.
    """
    keep = top_members(dev_uars, top) if top is not None else list(range(n_members))
    weights, info = np.zeros(n_members), {}
    if method == "mean":
        weights[keep] = 1.0
    elif method == "weighted":
        weights[keep] = [dev_uars[i] for i in keep]
    elif method == "select":
        if dev is None:
            raise DeepselfError("fusion method select: needs each member's dev_predictions.csv")
        info = ensemble_selection([dev[0][i] for i in keep], dev[1], rounds)
        weights[keep] = info.pop("weights")
        alone = dict(zip(keep, info["member_dev_uar"]))
        info["member_dev_uar"] = [alone.get(i) for i in range(n_members)]
    else:
        raise DeepselfError(f"fusion method: {method!r} is not one of {', '.join(METHODS)}")
    if not np.isfinite(weights).all() or (weights < 0).any() or weights.sum() <= 0:
        raise DeepselfError(f"fusion weights must be finite, non-negative and not all zero, got {list(weights)} "
                            "(method weighted: every model's development UAR is 0 or missing; use mean)")
    return weights / weights.sum(), info


def _read_dev(path: str, columns: list[str], held_out: set[str]) -> pd.DataFrame:
    """One member's ``dev_predictions.csv``, indexed by id, checked against the held-out fold's predictions."""
    if not Path(path).exists():
        raise DeepselfError(f"{path}: no such file; method select learns its weights from every member's "
                            "development predictions, which training writes: run the workflow (snakemake) again")
    frame = pd.read_csv(path, dtype=_READ_AS_TEXT)
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
        return pd.read_csv(path, dtype=_READ_AS_TEXT)
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

    The weights are :func:`member_weights`'s: ``mean``; ``weighted`` by each model's development
    UAR in this fold (its ``summary.json``); ``select``, learnt on the models'
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
    fused = pd.DataFrame({"id": first["id"].to_numpy(), "fold": first["fold"].to_numpy(),
                          "label": first["label"].to_numpy(), "pred": [classes[i] for i in proba.argmax(1)]})
    fused[columns] = proba
    check_probabilities(fused, columns, out)
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
