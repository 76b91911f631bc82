"""The report's tables: CSV files and the sections of ``report.md`` (markdown)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd

from deepself.io.atomic import atomic_path
from deepself.scoring.bootstrap import MIN_FOLDS_TTEST, best_system


def write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")


def markdown(frame: pd.DataFrame) -> str:
    cells = frame.astype(str)
    lines = ["| " + " | ".join(cells.columns) + " |", "|" + "---|" * len(cells.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells.to_numpy()]
    return "\n".join(lines)


def confidence_level(confidence: float) -> str:
    return f"{100 * confidence:g}%"


def interval(low: float, high: float) -> str:
    return f"[{100 * low:.1f}, {100 * high:.1f}]"


def _p(p: float) -> str:
    return "" if np.isnan(p) else "< 0.001" if p < 0.001 else f"{p:.3f}"


def label_table(classes: list[str], fonts: LabelFonts) -> list[str]:
    """The report's section that maps the indices of labels the figures cannot draw to the labels."""
    hidden = [(i, c) for i, c in enumerate(classes) if not fonts.shows(c)]
    if not hidden:
        return []
    return ["## Class labels in the figures", "",
            "No font on the machine that made the report draws these labels, so the figures show them as "
            "`class <index>` (index: the label's position among all the report's classes, from 0):", "",
            markdown(pd.DataFrame({"index": [f"class {i}" for i, _ in hidden], "label": [c for _, c in hidden]})),
            ""]


def comparison_text(comparisons: pd.DataFrame, best: str, n_folds: int, confidence: float, resamples: int,
                     seed: int) -> list[str]:
    """The report's section on comparisons: what was compared, how, and the table."""
    level = confidence_level(confidence)
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
        f"{level} CI": [interval(lo, hi) for lo, hi in zip(comparisons["diff_ci_low"], comparisons["diff_ci_high"])],
        "p (bootstrap)": [_p(p) for p in comparisons["p_bootstrap"]],
    })
    if n_folds >= MIN_FOLDS_TTEST:
        table["t (corrected, folds)"] = [f"{t:.2f}" for t in comparisons["corrected_t"]]
        table["p (corrected t)"] = [_p(p) for p in comparisons["p_corrected_t"]]
    return text + [markdown(table), ""]


def weights_text(systems: dict[str, dict]) -> list[str]:
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
            text += [f"## Fusion weights: {name} ({method})", "", markdown(pd.DataFrame(rows).round(3)), ""]
    return text


def report_text(experiment: str, summary: pd.DataFrame, per_fold: pd.DataFrame, per_class: pd.DataFrame,
                comparisons: pd.DataFrame, n_folds: int, confidence: float, resamples: int, seed: int) -> list[str]:
    """The lines of ``report.md`` up to its comparisons: the summary table, UAR per fold, recall per class."""
    level = confidence_level(confidence)
    # one held-out fold (a fixed train/dev split) has no spread to show
    table = summary.assign(UAR=[f"{100 * m:.1f}" if np.isnan(s) else f"{100 * m:.1f} ± {100 * s:.1f}"
                                for m, s in zip(summary["uar_mean"], summary["uar_sd"])])
    table[f"{level} CI"] = [interval(lo, hi) for lo, hi in zip(summary["uar_ci_low"], summary["uar_ci_high"])]
    wide = per_fold.pivot(index="system", columns="fold", values="uar").loc[summary["system"]]
    recall = per_class.pivot(index="system", columns="class", values="recall").loc[summary["system"]]
    return [f"# {experiment} report".strip(), "",
            "UAR (unweighted average recall, %) per held-out fold; mean ± sd over folds (ddof=1). "
            f"{level} CI: percentile interval of the mean UAR from {resamples} bootstrap resamples (seed {seed}) "
            "of the held-out samples, drawn within each fold and class.", "",
            markdown(table[["system", "kind", "models", "UAR", f"{level} CI", "n_folds", "n_samples"]]), "",
            "## UAR per fold (%)", "", markdown((100 * wide).round(1).reset_index()), "",
            "## Recall per class (%), pooled over folds", "", markdown((100 * recall).round(1).reset_index()), "",
            *comparison_text(comparisons, best_system(summary), n_folds, confidence, resamples, seed)]
