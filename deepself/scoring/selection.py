"""The weights of a fusion's members in one fold: equal, by development UAR, or by ensemble selection.

:func:`member_weights` chooses them (the methods are described in :mod:`deepself.scoring.fusion`);
:func:`ensemble_selection` is the greedy forward selection of Caruana et al. (2004) that ``select``
runs on the members' out-of-sample predictions of the fold's training part.
"""

from __future__ import annotations

import numpy as np

from deepself.errors import DeepselfError
from deepself.scoring.metrics import uar

METHODS = ("mean", "weighted", "select")
DEFAULT_ROUNDS = 25  # as AutoGluon's WeightedEnsemble (auto-sklearn uses 50)


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
        ``mean``, ``weighted`` or ``select`` (see :mod:`deepself.scoring.fusion`).
    n_members : int
        Number of members.
    dev_uars : list of float, optional
        Each member's development UAR in the fold (``summary.json``): needed by ``weighted`` and ``top``.
    top : int, optional
        Keep only the ``top`` members with the highest development UAR; for ``select``, the
        candidates it picks from.
    dev : tuple, optional
        ``select`` only: each member's out-of-sample probabilities of the training part, rows
        aligned, and the true class indices (:func:`deepself.scoring.fusion.read_dev_predictions`).
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
