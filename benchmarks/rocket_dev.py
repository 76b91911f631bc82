"""MiniRocket against MultiRocket on the development splits alone (issue 15): which classical transform to ship.

For each fold of a workflow's sample sheet the held-out fold is set aside unread; the other folds
are split into fit and development parts exactly as deepself's trainer splits them
(:func:`deepself.training.data.dev_split` with ``cv.dev_fraction`` and ``cv.seed``). Each of aeon's
transforms is fitted on the fit part, a ``StandardScaler`` + ``RidgeClassifierCV`` (aeon's usual
classifier for these transforms) learns from it, and the development part is scored. The script
prints the development UAR per fold, its mean and the seconds taken; it never scores a held-out
sample, so its figures may choose between models. ``--transforms multirocket+hydra`` fits both
transforms and puts their features side by side (aeon's MultiRocketHydra); ``--window 1024 512``
fits and scores windows of each recording (the last ending with it), the same recordings on the
same side of the split, and decides a recording on the sum of its windows' ridge scores.

Run after the workflow has filtered the signals, e.g. for Bonn:
``.venv/bin/python benchmarks/rocket_dev.py --results results/bonn`` (reads
``samples.csv`` and ``filtered/eeg.h5`` there; ``--store`` names another store).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np


NAMES = ("minirocket", "multirocket", "hydra")


def _transform_names(text: str) -> str:
    if not all(name in NAMES for name in text.split("+")):
        raise argparse.ArgumentTypeError(f"{text!r}: names of {', '.join(NAMES)} joined by '+'")
    return text


def _windows(x: np.ndarray, window: list[int] | None) -> tuple[np.ndarray, np.ndarray]:
    """The windows of every recording in ``x`` and the index of the recording each came from."""
    if window is None:
        return x, np.arange(len(x))
    length, hop = window
    starts = list(range(0, x.shape[-1] - length + 1, hop))
    if starts[-1] != x.shape[-1] - length:
        starts.append(x.shape[-1] - length)
    cut = np.stack([x[..., s:s + length] for s in starts], axis=1)  # recordings x windows x chans x length
    return cut.reshape(-1, *cut.shape[2:]), np.repeat(np.arange(len(x)), len(starts))


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--results", default="results/bonn", help="a workflow's results folder")
    parser.add_argument("--store", default="filtered/eeg.h5", help="the signals, relative to --results")
    parser.add_argument("--dev-fraction", type=float, default=0.2)
    parser.add_argument("--seed", type=int, default=0, help="cv.seed (the split) and the transforms' random_state")
    parser.add_argument("--transforms", nargs="+", default=["minirocket", "multirocket"],
                        type=_transform_names,
                        help="hydra: aeon's HydraTransformer (Dempster, Schmidt & Webb 2023); a+b: "
                             "both transforms' features side by side (e.g. multirocket+hydra)")
    parser.add_argument("--window", type=int, nargs=2, metavar=("LENGTH", "HOP"),
                        help="fit and score on windows of LENGTH samples every HOP (the last ending with "
                             "the recording); a recording's decision is the mean of its windows' ridge scores")
    args = parser.parse_args()
    results = Path(args.results)
    sheet, store = results / "samples.csv", results / args.store
    if not (sheet.exists() and store.exists()):
        print(f"skipped: {sheet} or {store} is missing; run the workflow's ingest and filter stages first "
              f"(e.g. snakemake --cores 2 --configfile config/bonn.yaml {store})")
        return 0

    from aeon.transformations.collection.convolution_based import HydraTransformer, MiniRocket, MultiRocket
    from sklearn.linear_model import RidgeClassifierCV
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    from deepself.scoring.metrics import uar
    from deepself.training.data import TrainingData, dev_split

    data = TrainingData(sheet, store, None)
    x, y = data.x.numpy().astype(np.float32), data.y.numpy()
    folds = sorted(set(data.folds), key=str)
    print(f"{store}: {x.shape[0]} signals of {x.shape[1]} channel(s) x {x.shape[2]} samples, "
          f"{len(data.classes)} classes, folds {', '.join(folds)}; development UAR (%), held-out folds unread")
    transforms = {"minirocket": MiniRocket, "multirocket": MultiRocket, "hydra": HydraTransformer}
    for name in args.transforms:
        scores, started = [], time.perf_counter()
        for fold in folds:
            pool = np.flatnonzero(data.folds != fold)
            fit, dev = dev_split(y[pool], data.groups[pool] if data.groups is not None else None,
                                 args.dev_fraction, args.seed)
            fit, dev = pool[fit], pool[dev]
            x_fit, owner = _windows(x[fit], args.window)
            x_dev, dev_owner = _windows(x[dev], args.window)
            parts = [transforms[part](random_state=args.seed, n_jobs=1).fit(x_fit) for part in name.split("+")]
            features = lambda data: np.hstack([np.asarray(part.transform(data)) for part in parts])  # noqa: E731
            classifier = make_pipeline(StandardScaler(), RidgeClassifierCV(alphas=np.logspace(-3, 3, 10)))
            classifier.fit(features(x_fit), y[fit][owner])
            window_scores = classifier.decision_function(features(x_dev))
            if window_scores.ndim == 1:  # two classes: sklearn's one column, the second class's score
                window_scores = np.stack([-window_scores, window_scores], axis=1)
            recording_scores = np.zeros((len(dev), window_scores.shape[1]))
            np.add.at(recording_scores, dev_owner, window_scores)
            predicted = classifier.classes_[recording_scores.argmax(1)]
            scores.append(100 * uar(y[dev], predicted, len(data.classes)))
        label = f"{name:12s}" + (" windows %d/%d" % tuple(args.window) if args.window else "")
        print(f"{label} dev UAR per fold {' '.join(f'{s:5.1f}' for s in scores)}   mean {np.mean(scores):5.1f}"
              f"   {time.perf_counter() - started:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
