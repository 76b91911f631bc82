"""The report's figures: confusion matrices, UAR per system (with folds and with intervals), training curves.

matplotlib is imported where the first figure is drawn (:func:`pyplot`); :func:`label_fonts`
finds fonts of this machine that draw the class and system names.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from deepself.io.atomic import atomic_path
from deepself.scoring.tables import confidence_level

# matplotlib's placeholder font draws a box per Unicode block, not the character: no fallback for labels
_PLACEHOLDER_FONTS = ("Last Resort",)


@functools.lru_cache(maxsize=1)
def pyplot():
    """matplotlib's pyplot on the Agg backend, imported where the first figure is drawn (about 1 s of imports)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    return plt


def _save_figure(fig, path: Path) -> None:
    with atomic_path(path) as tmp:
        fig.savefig(tmp, format="png", dpi=120, bbox_inches="tight")
    pyplot().close(fig)


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
    pyplot()  # the backend first, as where the figures are drawn
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


def plot_confusion(cm: np.ndarray, classes: list[str], title: str, path: Path) -> None:
    rows = cm / np.maximum(cm.sum(axis=1, keepdims=True), 1)
    size = max(4.0, 0.5 * len(classes) + 2)
    fig, ax = pyplot().subplots(figsize=(size, size))
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
    fig, ax = pyplot().subplots(figsize=(max(4.0, 0.8 * len(summary) + 2), 4))
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
    fig, ax = pyplot().subplots(figsize=(6, max(2.0, 0.45 * len(summary) + 1)))
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
    ax.set_xlabel(f"UAR, {confidence_level(confidence)} CI ({resamples} bootstrap resamples within fold and class)")
    ax.legend(fontsize=8, loc="best")
    _save_figure(fig, path)


def plot_curves(histories: dict[str, list[str]], path: Path) -> None:
    fig, axes = pyplot().subplots(1, 2, figsize=(10, 4))
    for (model, paths), colour in zip(histories.items(), pyplot().cm.tab10.colors * 10):
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

