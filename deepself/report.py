"""The cross-validation report: UAR per fold, mean and spread, per-class recall, confusion matrices, curves,
and how sure those figures are: confidence intervals and paired comparisons between systems.

Every model and every fusion is a "system"; each has one ``predictions.csv`` per held-out fold.
UAR is computed per fold and summarised as mean and standard deviation over folds (ddof=1);
per-class recall and the confusion matrix pool the held-out predictions of all folds.

Uncertainty comes from a bootstrap over the held-out samples, resampled within each fold and class
(:func:`bootstrap_uar`): every system is scored on the same resamples, so the interval of a
difference between two systems is paired. With three or more folds the comparisons also give the
corrected resampled t-test over the folds' UARs (:func:`corrected_resampled_ttest`).
"""

from __future__ import annotations

import functools
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from deepself.errors import DeepselfError
from deepself.io.sheet import read_sheet
from deepself.io.store import atomic_path
from deepself.metrics import confusion, recall_per_class, uar

log = logging.getLogger(__name__)

# The corrected resampled t-test estimates a variance from the folds' UARs: two folds leave one
# degree of freedom, too few to be worth a p-value, so it needs at least three.
MIN_FOLDS_TTEST = 3
# matplotlib's placeholder font draws a box per Unicode block, not the character: no fallback for labels
_PLACEHOLDER_FONTS = ("Last Resort",)
# Bootstrap index arrays of at most about this many elements at once (int64: 160 MB), whatever
# the size of the test set.
_BATCH_ELEMENTS = 20_000_000


@functools.lru_cache(maxsize=1)
def _pyplot():
    """matplotlib's pyplot on the Agg backend, imported where the first figure is drawn (about 1 s of imports)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def read_predictions(paths: list[str]) -> pd.DataFrame:
    """The ``predictions.csv`` of a system's folds, as one frame (ids, folds and labels as text)."""
    return pd.concat([pd.read_csv(p, dtype={"id": str, "fold": str, "label": str, "pred": str}) for p in paths],
                     ignore_index=True)


def _save_figure(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    _pyplot().close(fig)


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")


def _fold_order(folds) -> list[str]:
    return sorted(set(folds), key=lambda f: (len(f), f))


def score_system(predictions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, list[str]]:
    """UAR of each fold, per-class recall (pooled, and mean/sd over folds) and the pooled confusion matrix."""
    classes = [c[2:] for c in predictions.columns if c.startswith("p_")]
    index = {c: i for i, c in enumerate(classes)}
    y, p = predictions["label"].map(index).to_numpy(), predictions["pred"].map(index).to_numpy()
    folds = _fold_order(predictions["fold"])
    per_fold, fold_recalls = [], []
    for fold in folds:
        mask = (predictions["fold"] == fold).to_numpy()
        per_fold.append({"fold": fold, "uar": uar(y[mask], p[mask], len(classes)), "n": int(mask.sum())})
        fold_recalls.append(recall_per_class(confusion(y[mask], p[mask], len(classes))))
    cm = confusion(y, p, len(classes))
    fold_recalls = np.array(fold_recalls)
    per_class = pd.DataFrame({
        "class": classes,
        "recall": recall_per_class(cm),
        "recall_fold_mean": np.nanmean(fold_recalls, axis=0),
        "recall_fold_sd": np.nanstd(fold_recalls, axis=0, ddof=1) if len(folds) > 1 else np.nan,
        "support": cm.sum(axis=1),
    })
    return pd.DataFrame(per_fold), per_class, cm, classes


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
    fold_names = _fold_order(folds)
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


def train_sizes(sheet: str | os.PathLike) -> dict[str, int]:
    """Per fold of the sample sheet, the number of samples outside it: those its models learned from.

    Parameters
    ----------
    sheet
        The experiment's ``samples.csv``.

    Returns
    -------
    dict
        fold -> samples of the sheet in the other folds (their training and development part).
    """
    fold_column = read_sheet(sheet)["fold"]
    return {fold: int(len(fold_column) - n) for fold, n in fold_column.value_counts().items()}


def _best(summary: pd.DataFrame) -> str:
    """The system of the highest mean UAR; the first of them on a tie."""
    return summary.loc[summary["uar_mean"].idxmax(), "system"]


def comparison_pairs(summary: pd.DataFrame, systems: dict[str, dict]) -> list[tuple[str, str, str]]:
    """The comparisons the report makes: ``(system, reference, why)``, difference = system - reference.

    Every system against the best one (highest mean UAR; the first on a tie), and each fusion
    against its best member. A pair that both rules ask for is made once, with both reasons.
    """
    uars = summary.set_index("system")["uar_mean"]
    best = _best(summary)
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


@functools.lru_cache(maxsize=None)
def _font_characters(path: str) -> frozenset[str]:
    """The characters the font file at ``path`` has glyphs for (none when it cannot be read)."""
    from matplotlib import font_manager

    try:
        return frozenset(map(chr, font_manager.get_font(path).get_charmap()))
    except (OSError, RuntimeError, ValueError):
        return frozenset()


@dataclass
class LabelFonts:
    """The fonts the report's figures use, and the characters that none of them can draw.

    Attributes
    ----------
    families
        ``font.family`` for the figures: matplotlib's default font, then fonts of this machine that
        draw the characters it lacks (matplotlib falls back along the list).
    missing
        Characters of the labels that no font here draws: a label with one is shown by its index.
    """

    families: list[str]
    missing: frozenset[str]

    def shows(self, text: str) -> bool:
        """Whether the figures can draw ``text`` as it is."""
        return not self.missing.intersection(text)


def label_fonts(texts) -> LabelFonts:
    """Fonts that draw every character of ``texts`` (class and system names), as far as this machine has them.

    Fonts are added greedily, each the one that draws most of the characters still missing;
    matplotlib's placeholder font (a box per Unicode block) does not count.
    """
    _pyplot()  # the backend first, as where the figures are drawn
    from matplotlib import font_manager

    default = font_manager.findfont(font_manager.FontProperties())
    families = [font_manager.FontProperties(fname=default).get_name()]
    missing = set("".join(texts)) - _font_characters(default)
    # regular fonts first: matplotlib picks a family's regular face for the labels
    candidates = sorted((f for f in font_manager.fontManager.ttflist if not f.name.startswith(_PLACEHOLDER_FONTS)),
                        key=lambda f: (f.style != "normal", f.weight not in (400, "normal", "regular"), f.name))
    while missing and candidates:
        best = max(candidates, key=lambda f: len(missing & _font_characters(f.fname)))
        covered = missing & _font_characters(best.fname)
        if not covered:
            break
        if best.name not in families:
            families.append(best.name)
        missing -= covered
    return LabelFonts(families, frozenset(missing))


def shown_labels(classes: list[str], index: dict[str, int], fonts: LabelFonts) -> list[str]:
    """The class labels as a figure shows them: ``class <index>`` for one no font here draws."""
    return [c if fonts.shows(c) else f"class {index[c]}" for c in classes]


def _label_table(classes: list[str], fonts: LabelFonts) -> list[str]:
    """The report's section that maps the indices of labels the figures cannot draw to the labels."""
    hidden = [(i, c) for i, c in enumerate(classes) if not fonts.shows(c)]
    if not hidden:
        return []
    return ["## Class labels in the figures", "",
            "No font on the machine that made the report draws these labels, so the figures show them as "
            "`class <index>` (index: the label's position among all the report's classes, from 0):", "",
            _markdown(pd.DataFrame({"index": [f"class {i}" for i, _ in hidden], "label": [c for _, c in hidden]})),
            ""]


def plot_confusion(cm: np.ndarray, classes: list[str], title: str, path: Path) -> None:
    rows = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.5 * len(classes) + 2)
    fig, ax = _pyplot().subplots(figsize=(size, size))
    ax.imshow(rows, cmap="Blues", vmin=0, vmax=1)
    ax.set_xticks(range(len(classes)), classes, rotation=45, ha="right")
    ax.set_yticks(range(len(classes)), classes)
    for i in range(len(classes)):
        for j in range(len(classes)):
            ax.text(j, i, str(cm[i, j]), ha="center", va="center",
                    color="white" if rows[i, j] > 0.5 else "black", fontsize=8)
    ax.set_xlabel("predicted")
    ax.set_ylabel("true")
    ax.set_title(title)
    _save_figure(fig, path)


def plot_uar(summary: pd.DataFrame, per_fold: pd.DataFrame, path: Path) -> None:
    fig, ax = _pyplot().subplots(figsize=(max(4.0, 0.8 * len(summary) + 2), 4))
    x = np.arange(len(summary))
    ax.bar(x, summary["uar_mean"], yerr=summary["uar_sd"].fillna(0), capsize=4,
           color=["tab:blue" if k == "model" else "tab:orange" for k in summary["kind"]])
    for i, system in enumerate(summary["system"]):
        folds = per_fold.loc[per_fold["system"] == system, "uar"]
        ax.scatter(np.full(len(folds), i), folds, color="black", s=10, zorder=3)
    ax.set_xticks(x, summary["system"], rotation=30, ha="right")
    ax.set_ylim(0, 1)
    ax.set_ylabel("UAR (mean ± sd over folds; dots = folds)")
    _save_figure(fig, path)


def plot_uar_ci(summary: pd.DataFrame, confidence: float, resamples: int, path: Path) -> None:
    """Forest plot: each system's UAR (mean over folds) with its bootstrap interval, top to bottom."""
    fig, ax = _pyplot().subplots(figsize=(6, max(2.0, 0.45 * len(summary) + 1)))
    y = np.arange(len(summary))[::-1]
    mean = summary["uar_mean"].to_numpy()
    # a percentile interval may end a rounding error inside the mean (both 1.0 summed in another
    # order), or, for a skewed bootstrap, beside it: the bar then stops at the point
    errors = np.clip(np.vstack([mean - summary["uar_ci_low"], summary["uar_ci_high"] - mean]), 0.0, None)
    for kind, colour in (("model", "tab:blue"), ("fusion", "tab:orange")):
        rows = (summary["kind"] == kind).to_numpy()
        if not rows.any():
            continue
        ax.errorbar(mean[rows], y[rows], xerr=errors[:, rows], fmt="o", color=colour, capsize=4, label=kind)
    ax.axvline(mean.max(), color="grey", linestyle="--", linewidth=1)
    ax.set_yticks(y, summary["system"])
    ax.set_xlabel(f"UAR, {_level(confidence)} CI ({resamples} bootstrap resamples within fold and class)")
    ax.legend(fontsize=8, loc="best")
    _save_figure(fig, path)


def plot_curves(histories: dict[str, list[str]], path: Path) -> None:
    fig, axes = _pyplot().subplots(1, 2, figsize=(10, 4))
    for (model, paths), colour in zip(histories.items(), _pyplot().cm.tab10.colors * 10):
        for k, p in enumerate(paths):
            h = pd.read_csv(p)
            label = model if k == 0 else None
            axes[0].plot(h["epoch"], h["train_loss"], color=colour, alpha=0.6, label=label)
            axes[1].plot(h["epoch"], h["dev_uar"], color=colour, alpha=0.6, label=label)
    axes[0].set_title("training loss (one line per fold)")
    axes[1].set_title("development UAR (one line per fold)")
    for ax in axes:
        ax.set_xlabel("epoch")
        if histories:  # a report of fusions' or copied predictions alone has no training curves
            ax.legend(fontsize=8)
    _save_figure(fig, path)


def _markdown(frame: pd.DataFrame) -> str:
    cells = frame.astype(str)
    lines = ["| " + " | ".join(cells.columns) + " |", "|" + "---|" * len(cells.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells.to_numpy()]
    return "\n".join(lines)


def _level(confidence: float) -> str:
    return f"{100 * confidence:g}%"


def _interval(low: float, high: float) -> str:
    return f"[{100 * low:.1f}, {100 * high:.1f}]"


def _p(p: float) -> str:
    return "" if np.isnan(p) else "< 0.001" if p < 0.001 else f"{p:.3f}"


def _comparison_text(comparisons: pd.DataFrame, best: str, n_folds: int, confidence: float, resamples: int,
                     seed: int) -> list[str]:
    """The report's section on comparisons: what was compared, how, and the table."""
    level = _level(confidence)
    text = ["## Comparisons", ""]
    if comparisons.empty:
        return text + ["One system: nothing to compare.", ""]
    text += [f"Compared: every system against the best one (`{best}`, the highest mean UAR) and each fusion "
             f"against its best member; {len(comparisons)} comparisons. Difference = UAR of the system minus "
             f"UAR of the reference, in points, with its {level} paired bootstrap interval (both systems "
             f"scored on the same {resamples} resamples, seed {seed}) and the bootstrap p-value of no "
             f"difference (two-sided; the smallest p-value {resamples} resamples can give is "
             f"{2 / (resamples + 1):.3f})."]
    if n_folds >= MIN_FOLDS_TTEST:
        text += [f"Over the {n_folds} folds, the corrected resampled t-test (Nadeau and Bengio 2003; "
                 f"test/training ratio {comparisons['test_train_ratio'].iloc[0]:.3g}, {n_folds - 1} degrees of "
                 "freedom) tests the mean of the per-fold UAR differences. The bootstrap holds the trained "
                 "models fixed and resamples only their test samples; the t-test over folds also sees how the "
                 "models vary with their training sets; the two can disagree."]
    else:
        text += [f"The corrected resampled t-test over folds (Nadeau and Bengio 2003) is skipped: it needs "
                 f"{MIN_FOLDS_TTEST} or more held-out folds, this experiment has {n_folds}."]
    text += ["No correction for multiple comparisons is applied: each p-value is that comparison's alone.", ""]
    table = pd.DataFrame({
        "system": comparisons["system"], "reference": comparisons["reference"],
        "comparison": comparisons["comparison"],
        "difference": [f"{100 * d:+.1f}" for d in comparisons["uar_diff"]],
        f"{level} CI": [_interval(lo, hi) for lo, hi in zip(comparisons["diff_ci_low"], comparisons["diff_ci_high"])],
        "p (bootstrap)": [_p(p) for p in comparisons["p_bootstrap"]],
    })
    if n_folds >= MIN_FOLDS_TTEST:
        table["t (corrected, folds)"] = [f"{t:.2f}" for t in comparisons["corrected_t"]]
        table["p (corrected t)"] = [_p(p) for p in comparisons["p_corrected_t"]]
    return text + [_markdown(table), ""]


def _weights_text(systems: dict[str, dict]) -> list[str]:
    """Each fusion's member weights per fold, as its ``weights.json`` beside each fold's predictions holds them."""
    text = []
    for name, system in systems.items():
        if system["kind"] != "fusion":
            continue
        rows, method = [], ""
        for path in system["predictions"]:
            file = Path(path).with_name("weights.json")
            if not file.exists():  # fused before weights were written
                continue
            saved = json.loads(file.read_text())
            method = saved["method"]
            selection = saved.get("selection") or {}
            rows.append({"fold": Path(path).parent.name.removeprefix("fold"), **saved["weights"],
                         **({"dev UAR (%)": round(100 * selection["dev_uar"], 1)} if "dev_uar" in selection else {})})
        if rows:
            text += [f"## Fusion weights: {name} ({method})", "", _markdown(pd.DataFrame(rows).round(3)), ""]
    return text


def make_report(systems: dict[str, dict], out_dir: str | os.PathLike, experiment: str = "", *,
                train_size: dict[str, int] | None = None, resamples: int = 1000, seed: int = 0,
                confidence: float = 0.95) -> pd.DataFrame:
    """Write the report of every system into ``out_dir``.

    Parameters
    ----------
    systems
        name -> ``{"kind": "model" | "fusion", "predictions": [paths, one per fold],
        "histories": [paths] (models only), "models": [names] (fusions only)}``.
    out_dir
        Folder of the report's files.
    experiment
        Name in the report's title.
    train_size
        Held-out fold -> number of samples the models learned from in it (training and development
        part; :func:`train_sizes` counts them in ``samples.csv``), for the corrected resampled
        t-test. None: every predicted sample outside the fold, which is right when every sample is
        held out once (k-fold cross-validation over all folds).
    resamples, seed, confidence
        The bootstrap's number of resamples, seed and confidence level (config ``report``).

    Returns
    -------
    pandas.DataFrame
        The summary table (one row per system) also written to ``summary.csv``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary_rows, fold_rows, class_rows, frames, confusions = [], [], [], {}, []
    for name, system in systems.items():
        frames[name] = read_predictions(system["predictions"])
        per_fold, per_class, cm, classes = score_system(frames[name])
        fold_rows.append(per_fold.assign(system=name, kind=system["kind"]))
        class_rows.append(per_class.assign(system=name))
        summary_rows.append({
            "system": name, "kind": system["kind"], "models": "+".join(system.get("models", [])),
            "uar_mean": per_fold["uar"].mean(), "uar_sd": per_fold["uar"].std(ddof=1),
            "uar_min": per_fold["uar"].min(), "uar_max": per_fold["uar"].max(), "n_folds": len(per_fold),
            "n_samples": int(per_fold["n"].sum()),
        })
        confusions.append((name, cm, classes, len(per_fold)))
    log.info("predictions of %d systems read (%s); report -> %s", len(systems), ", ".join(systems), out)
    summary = pd.DataFrame(summary_rows)
    per_fold = pd.concat(fold_rows, ignore_index=True)[["system", "kind", "fold", "uar", "n"]]
    per_class = pd.concat(class_rows, ignore_index=True)
    per_class = per_class[["system", "class", "recall", "recall_fold_mean", "recall_fold_sd", "support"]]

    folds, labels, correct = align_predictions(frames)
    n_fold = per_fold.drop_duplicates("fold").set_index("fold")["n"]
    if train_size is None:
        train_size = {f: int(len(labels) - n) for f, n in n_fold.items()}
    pairs = comparison_pairs(summary, systems)
    boot, comparisons = compare_systems(list(systems), correct, folds, labels, per_fold, pairs,
                                        train_size, resamples=resamples, seed=seed, confidence=confidence)
    summary.insert(summary.columns.get_loc("uar_sd") + 1, "uar_ci_low", boot.low)
    summary.insert(summary.columns.get_loc("uar_ci_low") + 1, "uar_ci_high", boot.high)

    _write_csv(summary, out / "summary.csv")
    _write_csv(per_fold, out / "uar_per_fold.csv")
    _write_csv(per_class, out / "per_class.csv")
    _write_csv(comparisons, out / "comparisons.csv")
    all_classes = list(dict.fromkeys(c for _, _, classes, _ in confusions for c in classes))
    fonts = label_fonts([*all_classes, *systems])
    index = {c: i for i, c in enumerate(all_classes)}
    histories = {n: s["histories"] for n, s in systems.items() if s.get("histories")}
    with _pyplot().rc_context({"font.family": fonts.families}):
        for name, cm, classes, n_folds in confusions:
            shown = shown_labels(classes, index, fonts)
            note = "" if shown == classes else "\n(class <index>: see the table of labels in report.md)"
            plot_confusion(cm, shown, f"{name}: pooled over {n_folds} folds{note}", out / f"confusion_{name}.png")
        plot_uar(summary, per_fold, out / "uar.png")
        plot_uar_ci(summary, confidence, resamples, out / "uar_ci.png")
        plot_curves(histories, out / "curves.png")

    level = _level(confidence)
    # one held-out fold (a fixed train/dev split) has no spread to show
    table = summary.assign(UAR=[f"{100 * m:.1f}" if np.isnan(s) else f"{100 * m:.1f} ± {100 * s:.1f}"
                                for m, s in zip(summary["uar_mean"], summary["uar_sd"])])
    table[f"{level} CI"] = [_interval(lo, hi) for lo, hi in zip(summary["uar_ci_low"], summary["uar_ci_high"])]
    wide = per_fold.pivot(index="system", columns="fold", values="uar").loc[summary["system"]]
    recall = per_class.pivot(index="system", columns="class", values="recall").loc[summary["system"]]
    n_folds = len(n_fold)
    text = [f"# {experiment} report".strip(), "",
            "UAR (unweighted average recall, %) per held-out fold; mean ± sd over folds (ddof=1). "
            f"{level} CI: percentile interval of the mean UAR from {resamples} bootstrap resamples (seed {seed}) "
            "of the held-out samples, drawn within each fold and class.", "",
            _markdown(table[["system", "kind", "models", "UAR", f"{level} CI", "n_folds", "n_samples"]]), "",
            "## UAR per fold (%)", "", _markdown((100 * wide).round(1).reset_index()), "",
            "## Recall per class (%), pooled over folds", "", _markdown((100 * recall).round(1).reset_index()), "",
            *_comparison_text(comparisons, _best(summary), n_folds,
                              confidence, resamples, seed),
            *_weights_text(systems),
            *_label_table(all_classes, fonts)]
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text("\n".join(text))
    return summary
