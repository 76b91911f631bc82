"""What the report's confidence intervals and comparisons cost: time of the bootstrap, and of the whole report.

    .venv/bin/python benchmarks/report_bootstrap.py [--resamples 1000] [--repeats 5]

Cases: synthetic predictions shaped like FER-2013's dev split (3,589 held-out samples, 7 classes,
1 fold, 2 models and their fusion) and like ESC-10 (400 samples, 10 classes, 5 folds, 3 models and
2 fusions), written as the workflow writes them; then every experiment copied under
benchmarks/results/ (real predictions; its systems as its report/summary.csv lists them). For each
it prints the median over ``--repeats`` runs of the bootstrap step (intervals of every system and
every paired comparison, with the corrected resampled t-test: ``deepself.scoring.bootstrap.compare_systems``)
and the time of one whole ``make_report`` (CSV reading, confusion matrices, figures, the bootstrap
included).
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "benchmarks"))

from collect_results import systems_of  # noqa: E402

from deepself.scoring.bootstrap import align_predictions, compare_systems, comparison_pairs  # noqa: E402
from deepself.scoring.predictions import read_predictions  # noqa: E402
from deepself.scoring.report import make_report, score_system  # noqa: E402

# name -> (held-out samples of each fold, classes, {system: accuracy}, {fusion: its members})
SYNTHETIC = {
    "synthetic FER-2013 dev": ([3589], 7, {"cnn": 0.48, "mobilenet": 0.41, "all": 0.49},
                               {"all": ["cnn", "mobilenet"]}),
    "synthetic ESC-10": ([80] * 5, 10, {"cnn": 0.82, "panns": 0.84, "mobilenet": 0.86, "all": 0.89,
                                        "pretrained": 0.89},
                         {"all": ["cnn", "panns", "mobilenet"], "pretrained": ["panns", "mobilenet"]}),
}


def write_synthetic(folder: Path, fold_sizes: list[int], n_classes: int, accuracy: dict[str, float],
                    fusions: dict[str, list[str]], seed: int = 0) -> dict[str, dict]:
    """Predictions files of each system: the same samples and labels for all, each sample right with
    the system's accuracy (drawn for each system on its own), else a random other class."""
    rng = np.random.default_rng(seed)
    classes = np.array([f"c{k}" for k in range(n_classes)])
    labels = [rng.integers(0, n_classes, size) for size in fold_sizes]
    systems = {}
    for name, acc in accuracy.items():
        paths = []
        for f, y in enumerate(labels, start=1):
            wrong = (y + rng.integers(1, n_classes, len(y))) % n_classes
            preds = np.where(rng.random(len(y)) < acc, y, wrong)
            frame = pd.DataFrame({"id": [f"{f}-{i}" for i in range(len(y))], "fold": str(f), "label": classes[y],
                                  "pred": classes[preds]})
            for k, c in enumerate(classes):
                frame[f"p_{c}"] = (preds == k).astype(float)
            path = folder / f"{name}_fold{f}.csv"
            frame.to_csv(path, index=False)
            paths.append(str(path))
        systems[name] = {"kind": "fusion" if name in fusions else "model", "predictions": paths,
                         **({"models": fusions[name]} if name in fusions else {})}
    return systems


def time_case(systems: dict[str, dict], resamples: int, repeats: int) -> tuple[dict, list[float], float]:
    frames = {n: read_predictions(s["predictions"]) for n, s in systems.items()}
    per_fold = pd.concat([score_system(f)[0].assign(system=n) for n, f in frames.items()], ignore_index=True)
    summary = per_fold.groupby("system", sort=False)["uar"].mean().rename("uar_mean").reset_index()
    folds, labels, correct = align_predictions(frames)
    n_fold = per_fold.drop_duplicates("fold").set_index("fold")["n"]
    train_size = {f: int(len(labels) - n) for f, n in n_fold.items()}
    pairs = comparison_pairs(summary, systems)
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        compare_systems(list(systems), correct, folds, labels, per_fold, pairs, train_size, resamples=resamples,
                        seed=0, confidence=0.95)
        times.append(time.perf_counter() - start)
    with tempfile.TemporaryDirectory() as tmp:
        start = time.perf_counter()
        make_report(systems, tmp, resamples=resamples)
        whole = time.perf_counter() - start
    shape = {"samples": len(labels), "classes": len(set(labels)), "folds": len(n_fold), "systems": len(systems),
             "comparisons": len(pairs)}
    return shape, times, whole


def main(argv=None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--resamples", type=int, default=1000)
    parser.add_argument("--repeats", type=int, default=5)
    args = parser.parse_args(argv)
    print(f"{args.resamples} resamples, {os.cpu_count()} CPUs, OMP_NUM_THREADS={os.environ.get('OMP_NUM_THREADS')}, "
          f"numpy {np.__version__}")
    print(f"{'case':34} {'samples':>7} {'classes':>7} {'folds':>5} {'systems':>7} {'comparisons':>11} "
          f"{'bootstrap s':>11} {'(min-max)':>13} {'report s':>8}")
    cases = []
    with tempfile.TemporaryDirectory() as tmp:
        for name, (sizes, n_classes, accuracy, fusions) in SYNTHETIC.items():
            folder = Path(tmp) / name.replace(" ", "_")
            folder.mkdir()
            cases.append((name, write_synthetic(folder, sizes, n_classes, accuracy, fusions)))
        for summary in sorted((ROOT / "benchmarks" / "results").glob("*/report/summary.csv")):
            copy = summary.parents[1]
            cases.append((f"benchmarks/results/{copy.name}", systems_of(copy)))
        for name, systems in cases:
            shape, times, whole = time_case(systems, args.resamples, args.repeats)
            print(f"{name:34} {shape['samples']:7d} {shape['classes']:7d} {shape['folds']:5d} {shape['systems']:7d} "
                  f"{shape['comparisons']:11d} {statistics.median(times):11.3f} "
                  f"{f'({min(times):.3f}-{max(times):.3f})':>13} {whole:8.2f}")


if __name__ == "__main__":
    main()
