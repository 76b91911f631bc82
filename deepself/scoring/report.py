"""The cross-validation report: UAR per fold, mean and spread, per-class recall, confusion matrices, curves,
and how sure those figures are: confidence intervals and paired comparisons between systems.

Every model and every fusion is a "system"; each has one ``predictions.csv`` per held-out fold.
UAR is computed per fold and summarised as mean and standard deviation over folds (ddof=1);
per-class recall and the confusion matrix pool the held-out predictions of all folds.

Uncertainty comes from a bootstrap over the held-out samples, resampled within each fold and class
(:func:`~deepself.scoring.bootstrap.bootstrap_uar`): every system is scored on the same resamples,
so the interval of a difference between two systems is paired. With three or more folds the
comparisons also give the corrected resampled t-test over the folds' UARs
(:func:`~deepself.scoring.bootstrap.corrected_resampled_ttest`).

This module scores the systems and writes the report; :mod:`deepself.scoring.bootstrap` computes the
intervals and comparisons, :mod:`deepself.scoring.plots` draws the figures and
:mod:`deepself.scoring.tables` writes the CSV files and the markdown.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

import numpy as np
import pandas as pd

from deepself.io.atomic import atomic_path
from deepself.io.sheet import read_sheet
from deepself.scoring.bootstrap import align_predictions, compare_systems, comparison_pairs
from deepself.scoring.metrics import confusion, recall_per_class, uar
from deepself.scoring.plots import label_fonts, plot_confusion, plot_curves, plot_uar, plot_uar_ci, pyplot, shown_labels
from deepself.scoring.predictions import fold_order, read_predictions
from deepself.scoring.tables import label_table, report_text, weights_text, write_csv

log = logging.getLogger(__name__)


def score_system(predictions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, list[str]]:
    """UAR of each fold, per-class recall (pooled, and mean/sd over folds) and the pooled confusion matrix."""
    classes = [c[2:] for c in predictions.columns if c.startswith("p_")]
    index = {c: i for i, c in enumerate(classes)}
    y, p = predictions["label"].map(index).to_numpy(), predictions["pred"].map(index).to_numpy()
    folds = fold_order(predictions["fold"])
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
    frames, summary, per_fold, per_class, confusions = _score_systems(systems)
    log.info("predictions of %d systems read (%s); report -> %s", len(systems), ", ".join(systems), out)

    folds, labels, correct = align_predictions(frames)
    n_fold = per_fold.drop_duplicates("fold").set_index("fold")["n"]
    if train_size is None:
        train_size = {f: int(len(labels) - n) for f, n in n_fold.items()}
    pairs = comparison_pairs(summary, systems)
    boot, comparisons = compare_systems(list(systems), correct, folds, labels, per_fold, pairs,
                                        train_size, resamples=resamples, seed=seed, confidence=confidence)
    summary.insert(summary.columns.get_loc("uar_sd") + 1, "uar_ci_low", boot.low)
    summary.insert(summary.columns.get_loc("uar_ci_low") + 1, "uar_ci_high", boot.high)

    write_csv(summary, out / "summary.csv")
    write_csv(per_fold, out / "uar_per_fold.csv")
    write_csv(per_class, out / "per_class.csv")
    write_csv(comparisons, out / "comparisons.csv")
    all_classes = list(dict.fromkeys(c for _, _, classes, _ in confusions for c in classes))
    fonts = label_fonts([*all_classes, *systems])
    _draw_figures(out, systems, summary, per_fold, confusions, all_classes, fonts, confidence, resamples)
    text = report_text(experiment, summary, per_fold, per_class, comparisons, len(n_fold), confidence, resamples,
                       seed)
    text += [*weights_text(systems), *label_table(all_classes, fonts)]
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text("\n".join(text))
    return summary


def _score_systems(systems: dict[str, dict]) -> tuple[dict, pd.DataFrame, pd.DataFrame, pd.DataFrame, list]:
    """Every system's predictions and scores: frames, summary, UAR per fold, recall per class, confusions."""
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
    summary = pd.DataFrame(summary_rows)
    per_fold = pd.concat(fold_rows, ignore_index=True)[["system", "kind", "fold", "uar", "n"]]
    per_class = pd.concat(class_rows, ignore_index=True)
    per_class = per_class[["system", "class", "recall", "recall_fold_mean", "recall_fold_sd", "support"]]
    return frames, summary, per_fold, per_class, confusions


def _draw_figures(out: Path, systems: dict[str, dict], summary: pd.DataFrame, per_fold: pd.DataFrame,
                  confusions: list, all_classes: list[str], fonts, confidence: float, resamples: int) -> None:
    """The report's figures: a confusion matrix per system, UAR per system (folds, intervals), curves."""
    index = {c: i for i, c in enumerate(all_classes)}
    histories = {n: s["histories"] for n, s in systems.items() if s.get("histories")}
    with pyplot().rc_context({"font.family": fonts.families}):
        for name, cm, classes, n_folds in confusions:
            shown = shown_labels(classes, index, fonts)
            note = "" if shown == classes else "\n(class <index>: see the table of labels in report.md)"
            plot_confusion(cm, shown, f"{name}: pooled over {n_folds} folds{note}", out / f"confusion_{name}.png")
        plot_uar(summary, per_fold, out / "uar.png")
        plot_uar_ci(summary, confidence, resamples, out / "uar_ci.png")
        plot_curves(histories, out / "curves.png")
