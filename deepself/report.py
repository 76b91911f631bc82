"""The cross-validation report: UAR per fold, mean and spread, per-class recall, confusion matrices, curves.

Every model and every fusion is a "system"; each has one ``predictions.csv`` per held-out fold.
UAR is computed per fold and summarised as mean and standard deviation over folds (ddof=1);
per-class recall and the confusion matrix pool the held-out predictions of all folds.
"""

from __future__ import annotations

import os
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

from deepself.io.store import atomic_path  # noqa: E402
from deepself.metrics import confusion, recall_per_class, uar  # noqa: E402


def _read_predictions(paths: list[str]) -> pd.DataFrame:
    return pd.concat([pd.read_csv(p, dtype={"id": str, "fold": str, "label": str, "pred": str}) for p in paths],
                     ignore_index=True)


def _save_figure(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    plt.close(fig)


def _write_csv(frame: pd.DataFrame, path: Path) -> None:
    with atomic_path(path) as tmp:
        frame.to_csv(tmp, index=False, float_format="%.6g")


def score_system(predictions: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame, np.ndarray, list[str]]:
    """UAR of each fold, per-class recall (pooled, and mean/sd over folds) and the pooled confusion matrix."""
    classes = [c[2:] for c in predictions.columns if c.startswith("p_")]
    index = {c: i for i, c in enumerate(classes)}
    y, p = predictions["label"].map(index).to_numpy(), predictions["pred"].map(index).to_numpy()
    folds = sorted(predictions["fold"].unique(), key=lambda f: (len(f), f))
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


def plot_confusion(cm: np.ndarray, classes: list[str], title: str, path: Path) -> None:
    rows = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.5 * len(classes) + 2)
    fig, ax = plt.subplots(figsize=(size, size))
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
    fig, ax = plt.subplots(figsize=(max(4.0, 0.8 * len(summary) + 2), 4))
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


def plot_curves(histories: dict[str, list[str]], path: Path) -> None:
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for (model, paths), colour in zip(histories.items(), plt.cm.tab10.colors * 10):
        for k, p in enumerate(paths):
            h = pd.read_csv(p)
            label = model if k == 0 else None
            axes[0].plot(h["epoch"], h["train_loss"], color=colour, alpha=0.6, label=label)
            axes[1].plot(h["epoch"], h["dev_uar"], color=colour, alpha=0.6, label=label)
    axes[0].set_title("training loss (one line per fold)")
    axes[1].set_title("development UAR (one line per fold)")
    for ax in axes:
        ax.set_xlabel("epoch")
        ax.legend(fontsize=8)
    _save_figure(fig, path)


def _markdown(frame: pd.DataFrame) -> str:
    cells = frame.astype(str)
    lines = ["| " + " | ".join(cells.columns) + " |", "|" + "---|" * len(cells.columns)]
    lines += ["| " + " | ".join(row) + " |" for row in cells.to_numpy()]
    return "\n".join(lines)


def make_report(systems: dict[str, dict], out_dir: str | os.PathLike, experiment: str = "") -> pd.DataFrame:
    """Write the report of every system into ``out_dir``.

    Parameters
    ----------
    systems
        name -> ``{"kind": "model" | "fusion", "predictions": [paths, one per fold],
        "histories": [paths] (models only), "models": [names] (fusions only)}``.

    Returns
    -------
    pandas.DataFrame
        The summary table (one row per system) also written to ``summary.csv``.
    """
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    summary_rows, fold_rows, class_rows = [], [], []
    for name, system in systems.items():
        per_fold, per_class, cm, classes = score_system(_read_predictions(system["predictions"]))
        fold_rows.append(per_fold.assign(system=name, kind=system["kind"]))
        class_rows.append(per_class.assign(system=name))
        summary_rows.append({
            "system": name, "kind": system["kind"], "models": "+".join(system.get("models", [])),
            "uar_mean": per_fold["uar"].mean(), "uar_sd": per_fold["uar"].std(ddof=1),
            "uar_min": per_fold["uar"].min(), "uar_max": per_fold["uar"].max(), "n_folds": len(per_fold),
            "n_samples": int(per_fold["n"].sum()),
        })
        plot_confusion(cm, classes, f"{name}: pooled over {len(per_fold)} folds", out / f"confusion_{name}.png")
    summary = pd.DataFrame(summary_rows)
    per_fold = pd.concat(fold_rows, ignore_index=True)[["system", "kind", "fold", "uar", "n"]]
    per_class = pd.concat(class_rows, ignore_index=True)
    per_class = per_class[["system", "class", "recall", "recall_fold_mean", "recall_fold_sd", "support"]]
    _write_csv(summary, out / "summary.csv")
    _write_csv(per_fold, out / "uar_per_fold.csv")
    _write_csv(per_class, out / "per_class.csv")
    plot_uar(summary, per_fold, out / "uar.png")
    histories = {n: s["histories"] for n, s in systems.items() if s.get("histories")}
    plot_curves(histories, out / "curves.png")

    # one held-out fold (a fixed train/dev split) has no spread to show
    table = summary.assign(UAR=[f"{100 * m:.1f}" if np.isnan(s) else f"{100 * m:.1f} ± {100 * s:.1f}"
                                for m, s in zip(summary["uar_mean"], summary["uar_sd"])])
    wide = per_fold.pivot(index="system", columns="fold", values="uar").loc[summary["system"]]
    recall = per_class.pivot(index="system", columns="class", values="recall").loc[summary["system"]]
    text = [f"# {experiment} report".strip(), "",
            "UAR (unweighted average recall, %) per held-out fold; mean ± sd over folds (ddof=1).", "",
            _markdown(table[["system", "kind", "models", "UAR", "n_folds", "n_samples"]]), "",
            "## UAR per fold (%)", "", _markdown((100 * wide).round(1).reset_index()), "",
            "## Recall per class (%), pooled over folds", "", _markdown((100 * recall).round(1).reset_index()), ""]
    with atomic_path(out / "report.md") as tmp:
        tmp.write_text("\n".join(text))
    return summary
