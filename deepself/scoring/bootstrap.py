"""How sure the report's figures are: bootstrap intervals of UAR, paired comparisons between systems.

The bootstrap resamples the held-out samples within each fold and class (:func:`bootstrap_uar`):
every system is scored on the same resamples, so the interval of a difference between two systems
is paired. With three or more folds the comparisons also give the corrected resampled t-test over
the folds' UARs (:func:`corrected_resampled_ttest`). :func:`comparison_pairs` chooses the
comparisons the report makes; :func:`compare_systems` makes them. scipy is imported where the
first bootstrap runs.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from deepself.errors import DeepselfError
from deepself.scoring.predictions import fold_order

# The corrected resampled t-test estimates a variance from the folds' UARs: two folds leave one
# degree of freedom, too few to be worth a p-value, so it needs at least three.
MIN_FOLDS_TTEST = 3
# Bootstrap index arrays of at most about this many elements at once (int64: 160 MB), whatever
# the size of the test set.
_BATCH_ELEMENTS = 20_000_000


def align_predictions(frames: dict[str, pd.DataFrame]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """The held-out samples that every system predicted, in one order.

    Parameters
    ----------
    frames
        system name -> its predictions (columns ``id, fold, label, pred``), all folds together.

    Returns
    -------
    folds, labels : numpy.ndarray
        Fold and true label of each sample (strings), in the order of the first system.
    correct : numpy.ndarray
        Boolean (n_systems, n_samples): whether each system predicted each sample right.

    Raises
    ------
    DeepselfError
        When a sample id occurs twice in a system's predictions, or the systems did not predict the
        same samples with the same folds and labels: a paired comparison needs the same samples.
    """
    names = list(frames)
    first = frames[names[0]].set_index("id")
    correct = []
    for name in names:
        frame = frames[name]
        if frame["id"].duplicated().any():
            dup = frame.loc[frame["id"].duplicated(), "id"].iloc[0]
            raise DeepselfError(f"report: system {name!r}: sample id {dup!r} is predicted more than once")
        frame = frame.set_index("id")
        if set(frame.index) != set(first.index):
            other = sorted(set(frame.index) ^ set(first.index))[0]
            raise DeepselfError(f"report: systems {names[0]!r} and {name!r} did not predict the same samples "
                                f"(e.g. id {other!r}); a paired comparison needs the same held-out samples")
        frame = frame.loc[first.index]
        for column in ("fold", "label"):
            if not (frame[column] == first[column]).all():
                sample = frame.index[(frame[column] != first[column]).to_numpy()][0]
                raise DeepselfError(f"report: systems {names[0]!r} and {name!r} disagree on the {column} "
                                    f"of sample {sample!r}")
        correct.append((frame["pred"] == frame["label"]).to_numpy())
    return first["fold"].to_numpy(), first["label"].to_numpy(), np.array(correct, dtype=bool)


@dataclass
class BootstrapUAR:
    """UARs, differences and their bootstrap intervals (see :func:`bootstrap_uar`).

    Attributes
    ----------
    uar, low, high
        (n_systems,): mean over folds of the fold UARs, and the bounds of its interval.
    diff, diff_low, diff_high
        (n_pairs,): ``uar[a] - uar[b]`` of each pair ``(a, b)``, and the bounds of its paired interval.
    p_value
        (n_pairs,): two-sided bootstrap p-value of "no difference" (see :func:`bootstrap_uar`).
    """

    uar: np.ndarray
    low: np.ndarray
    high: np.ndarray
    diff: np.ndarray
    diff_low: np.ndarray
    diff_high: np.ndarray
    p_value: np.ndarray


def bootstrap_uar(correct: np.ndarray, folds, labels, pairs=(), *, resamples: int = 1000, seed: int = 0,
                  confidence: float = 0.95) -> BootstrapUAR:
    """Bootstrap confidence intervals of UAR, and paired intervals and p-values of UAR differences.

    The statistic is the report's UAR: the mean over folds of each fold's UAR, itself the mean
    recall of the classes present in that fold. One resample draws, within every fold and class
    (a stratum), as many held-out samples as the stratum has, with replacement: each stratum's
    size stays fixed, as in the cross-validation design, and only which samples are in it varies.
    The strata are the independent samples of ``scipy.stats.bootstrap`` (``paired=False``
    resamples each on its own), and what it resamples are sample indices, so that one resample
    scores every system on the same samples: the interval of a difference is paired.

    Percentile intervals (not scipy's default BCa): a difference between a system and itself, or a
    system right on every sample, has a bootstrap distribution of one value, where BCa is undefined
    and the percentile interval is that value. A stratum of one sample is the same in every
    resample (and ``scipy.stats.bootstrap`` needs two or more observations per sample), so it
    enters the statistic as a constant.

    The p-value of a pair tests "no difference" by inverting the percentile interval: twice the
    share of resamples on the far side of 0 (the smaller of "difference <= 0" and ">= 0"; a
    resample with difference 0 counts on both sides), each share counted as
    ``(1 + hits) / (1 + resamples)`` so that it is never 0, and at most 1. It is about the
    smallest level ``1 - confidence`` whose interval leaves out 0, so p < 1 - confidence where the
    interval leaves out 0, up to a resample at the edge. A system against itself gets 1.

    Parameters
    ----------
    correct
        Boolean (n_systems, n_samples): each system's prediction of each held-out sample right or not.
    folds, labels
        (n_samples,): the held-out fold and true label of each sample.
    pairs
        ``(a, b)`` row indices of ``correct``: the differences ``uar[a] - uar[b]`` to bootstrap.
    resamples, seed, confidence
        Number of resamples, seed of the resampling, confidence level of the intervals.

    Returns
    -------
    BootstrapUAR
    """
    correct = np.asarray(correct, dtype=bool)
    folds, labels = np.asarray(folds), np.asarray(labels)
    pairs = [tuple(p) for p in pairs]
    fold_names = fold_order(folds)
    strata, weights = [], []
    for fold in fold_names:
        in_fold = folds == fold
        classes = np.unique(labels[in_fold])
        for label in classes:
            strata.append(np.flatnonzero(in_fold & (labels == label)))
            # the fold's UAR weighs its classes equally, the overall UAR its folds
            weights.append(1.0 / (len(fold_names) * len(classes)))
    weights = np.array(weights)
    fixed = np.array([len(s) == 1 for s in strata])
    constant = np.zeros((len(correct), 1))
    for stratum, w in zip([s for s, f in zip(strata, fixed) if f], weights[fixed]):
        constant += w * correct[:, stratum]
    varying = [s for s, f in zip(strata, fixed) if not f]
    varying_weights = weights[~fixed]
    first, second = np.array([a for a, _ in pairs], dtype=int), np.array([b for _, b in pairs], dtype=int)

    def statistic(*indices, axis=-1):
        # indices[k]: (resamples, n_k) resampled sample positions of the k-th varying stratum
        scores = constant
        for idx, w in zip(indices, varying_weights):
            scores = scores + w * correct[:, idx].mean(axis=-1)
        return np.concatenate([scores, scores[first] - scores[second]], axis=0)

    n_systems = len(correct)
    point = statistic(*[s[None, :] for s in varying])[:, 0]
    if varying:
        batch = max(1, min(resamples, _BATCH_ELEMENTS // len(labels)))
        from scipy import stats  # here: the bootstrap is the report's first use of scipy

        result = stats.bootstrap(varying, statistic, n_resamples=resamples, batch=batch, vectorized=True,
                                 paired=False, confidence_level=confidence, method="percentile",
                                 rng=np.random.default_rng(seed))
        low, high = result.confidence_interval
        distribution = result.bootstrap_distribution
    else:
        # every stratum holds one sample: every resample is the data itself
        low = high = point
        distribution = np.repeat(point[:, None], resamples, axis=1)
    diffs = distribution[n_systems:]
    # a tolerance for the float sums: a difference of 0 up to rounding counts on both sides
    hits = np.minimum((diffs <= 1e-12).sum(axis=1), (diffs >= -1e-12).sum(axis=1))
    return BootstrapUAR(uar=point[:n_systems], low=low[:n_systems], high=high[:n_systems], diff=point[n_systems:],
                        diff_low=low[n_systems:], diff_high=high[n_systems:],
                        p_value=np.minimum(1.0, 2 * (1 + hits) / (1 + resamples)))


def corrected_resampled_ttest(diffs, test_train_ratio: float) -> tuple[float, float]:
    """Corrected resampled t-test (Nadeau and Bengio 2003) of the mean of per-fold differences.

    The folds' training sets overlap, so their scores are correlated and the plain paired t-test
    over folds is too confident. Nadeau and Bengio's correction widens the variance of the mean
    from ``s^2 / J`` to ``(1 / J + n_test / n_train) s^2``, with J folds and the test-set over
    training-set size ratio; the statistic has a t distribution with J - 1 degrees of freedom.

    Parameters
    ----------
    diffs
        Per-fold differences of a score between two systems (J values).
    test_train_ratio
        ``n_test / n_train``: held-out samples over the samples the models learned from in a fold.

    Returns
    -------
    t, p : float
        The statistic and its two-sided p-value. Differences all equal give ``s = 0``: t is 0
        and p is 1 when they are 0, and t is infinite and p is 0 otherwise.
    """
    diffs = np.asarray(diffs, dtype=float)
    if len(diffs) < 2:
        raise ValueError(f"the corrected resampled t-test needs 2 or more folds, got {len(diffs)}")
    mean, var = diffs.mean(), diffs.var(ddof=1)
    if var == 0:
        return (0.0, 1.0) if mean == 0 else (float(np.copysign(np.inf, mean)), 0.0)
    t = mean / np.sqrt((1 / len(diffs) + test_train_ratio) * var)
    from scipy import stats

    return float(t), float(2 * stats.t.sf(abs(t), df=len(diffs) - 1))


def best_system(summary: pd.DataFrame) -> str:
    """The system of the highest mean UAR; the first of them on a tie."""
    return summary.loc[summary["uar_mean"].idxmax(), "system"]


def comparison_pairs(summary: pd.DataFrame, systems: dict[str, dict]) -> list[tuple[str, str, str]]:
    """The comparisons the report makes: ``(system, reference, why)``, difference = system - reference.

    Every system against the best one (highest mean UAR; the first on a tie), and each fusion
    against its best member. A pair that both rules ask for is made once, with both reasons.
    """
    uars = summary.set_index("system")["uar_mean"]
    best = best_system(summary)
    pairs = {frozenset((name, best)): [name, best, "against the best system"] for name in uars.index
             if name != best}
    for name, system in systems.items():
        if system["kind"] != "fusion":
            continue
        member = uars.loc[system["models"]].idxmax()
        key = frozenset((name, member))
        if key in pairs:
            pairs[key][2] += f"; {name} against its best member"
        else:
            pairs[key] = [name, member, "fusion against its best member"]
    return [tuple(p) for p in pairs.values()]


def compare_systems(names: list[str], correct: np.ndarray, folds, labels, per_fold: pd.DataFrame,
                    pairs: list[tuple[str, str, str]], train_size: dict[str, int], *, resamples: int,
                    seed: int, confidence: float) -> tuple[BootstrapUAR, pd.DataFrame]:
    """Bootstrap intervals of every system and the table of comparisons (``comparisons.csv``).

    Parameters
    ----------
    names
        The systems, in the order of the rows of ``correct``.
    correct, folds, labels
        As :func:`align_predictions` returns them.
    per_fold
        The UAR of each system on each fold (columns ``system, fold, uar, n``).
    pairs
        ``(system, reference, why)`` as :func:`comparison_pairs` returns them.
    train_size
        fold -> number of samples the models learned from in that fold.
    resamples, seed, confidence
        Settings of the bootstrap (config ``report``).

    Returns
    -------
    BootstrapUAR
        The intervals of the systems (in the order of ``names``) and of the pairs.
    pandas.DataFrame
        One row per pair: UAR difference, its paired interval, bootstrap p-value and, with
        ``MIN_FOLDS_TTEST`` folds or more, the corrected resampled t-test (NaN otherwise).
    """
    position = {n: i for i, n in enumerate(names)}
    boot = bootstrap_uar(correct, folds, labels, [(position[a], position[b]) for a, b, _ in pairs],
                         resamples=resamples, seed=seed, confidence=confidence)
    wide = per_fold.pivot(index="fold", columns="system", values="uar")
    sizes = per_fold.drop_duplicates("fold").set_index("fold")["n"]
    fold_test = len(wide) >= MIN_FOLDS_TTEST
    absent = [f for f in wide.index if f not in train_size]
    if fold_test and absent:
        raise DeepselfError(f"report: held-out fold {absent[0]!r} is not a fold of the sample sheet "
                            f"(its folds: {', '.join(sorted(train_size))})")
    ratio = float(np.mean([sizes[f] / train_size[f] for f in wide.index])) if fold_test else np.nan
    rows = []
    for k, (a, b, why) in enumerate(pairs):
        t, p = corrected_resampled_ttest(wide[a] - wide[b], ratio) if fold_test else (np.nan, np.nan)
        rows.append({"system": a, "reference": b, "comparison": why, "uar_diff": boot.diff[k],
                     "diff_ci_low": boot.diff_low[k], "diff_ci_high": boot.diff_high[k],
                     "p_bootstrap": boot.p_value[k], "n_folds": len(wide), "test_train_ratio": ratio,
                     "corrected_t": t, "p_corrected_t": p})
    columns = ["system", "reference", "comparison", "uar_diff", "diff_ci_low", "diff_ci_high", "p_bootstrap",
               "n_folds", "test_train_ratio", "corrected_t", "p_corrected_t"]
    return boot, pd.DataFrame(rows, columns=columns)

