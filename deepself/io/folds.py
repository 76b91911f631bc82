"""The folds of the samples: names, assignment (the sheet's own, or stratified k folds), and checks.

Every held-out fold must leave each class enough samples in its training part (and its
development split); these checks run on the sheet (:mod:`deepself.io.sheet`) and before any job
(:mod:`deepself.io.preflight`).
"""

from __future__ import annotations

import math
import re

import numpy as np
import pandas as pd

from deepself.errors import DeepselfError

# A fold name becomes part of file names (fold<name>/) and a command-line argument: no path
# separators, no braces (Snakemake would read them as wildcards), no leading "-" (an option).
_FOLD_NAME = re.compile(r"^[^-/\\{}][^/\\{}]*$")


def fold_name(value) -> str:
    """A fold as the sheet writes it, normalised: surrounding spaces dropped, ``1.0`` and ``01`` are ``1``."""
    text = str(value).strip()
    try:
        number = float(text)
    except ValueError:
        return text
    return str(int(number)) if math.isfinite(number) and number.is_integer() else text


def check_fold_names(folds, origin: str) -> None:
    """Raise unless every fold name can be part of a file name and a command line (see ``_FOLD_NAME``)."""
    for fold in folds:
        if not (fold.isprintable() and _FOLD_NAME.match(fold)):
            raise DeepselfError(
                f"{origin}: fold name {fold!r} cannot be used; a fold name is printable text without / \\ {{ }} "
                "that does not start with -: rename it in the fold column"
            )


def check_class_counts(sheet: pd.DataFrame, classes: list[str], cv: dict, origin: str) -> None:
    """Raise unless there are two classes and each has the samples that the folds and the development split need.

    k stratified folds need a class's samples in every fold (at least k); the development split
    (``cv.dev_fraction`` > 0) needs two of them in each fold's training part, which holds
    ``n - ceil(n / k)`` of a class's ``n`` samples. Folds from the sheet are checked fold by fold
    in :func:`check_folds`.
    """
    counts = sheet["label"].value_counts()
    present = [c for c in classes if counts.get(c, 0)]
    if len(present) < 2:
        raise DeepselfError(f"{origin}: every sample has label {present[0]!r}; a classifier needs samples of at "
                            "least two classes")
    k = cv["folds"]
    if k == "from_sheet":
        return
    for name in classes:
        n = int(counts.get(name, 0))
        if n < k:
            raise DeepselfError(f"{origin}: class {name!r} has {n} samples; cv.folds {k} needs at least {k} (one in "
                                f"each fold): add samples of {name!r}, lower cv.folds, or merge the class into another "
                                "with data.labels")
        in_training = n - math.ceil(n / k)
        if cv["dev_fraction"] > 0 and in_training < 2:
            raise DeepselfError(f"{origin}: class {name!r} has {n} samples; with cv.folds {k} a fold's training part "
                                f"holds {in_training} of them, and the development split (cv.dev_fraction "
                                f"{cv['dev_fraction']:g}) needs 2: add samples of {name!r}, or set cv.dev_fraction 0")


def assign_folds(sheet: pd.DataFrame, cv: dict, origin: str) -> pd.DataFrame:
    """Fill the ``fold`` column: the sheet's own folds, or stratified (grouped) k folds, seeded."""
    sheet = sheet.copy()
    if cv["folds"] == "from_sheet":
        if "fold" not in sheet.columns:
            raise DeepselfError(f"{origin}: cv.folds is from_sheet but the sheet has no fold column")
        sheet["fold"] = sheet["fold"].map(fold_name)
        blank = sheet["id"][sheet["fold"] == ""]
        if len(blank):
            raise DeepselfError(f"{origin}: sample {blank.iloc[0]!r} has no fold (cv.folds is from_sheet)")
        check_fold_names(sheet["fold"].unique(), origin)
        return sheet
    k = cv["folds"]
    groups = sheet["group"].to_numpy() if "group" in sheet.columns and (sheet["group"] != "").all() else None
    if groups is None:
        sheet["fold"] = [str(i + 1) for i in stratified_folds(sheet["label"].to_numpy(), k, cv["seed"])]
        return sheet
    # sklearn (with scipy.stats, ~1 s) only here: the sheet job of ungrouped samples, the readers
    # of a sheet, ingest and the workflow's parsing start without it.
    from sklearn.model_selection import StratifiedGroupKFold

    splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=cv["seed"])
    folds = np.empty(len(sheet), dtype=object)
    for i, (_, test) in enumerate(splitter.split(np.zeros(len(sheet)), sheet["label"], groups)):
        folds[test] = str(i + 1)
    sheet["fold"] = folds
    return sheet


def stratified_folds(labels: np.ndarray, k: int, seed: int) -> np.ndarray:
    """The fold (0 to k - 1) of each sample as scikit-learn's ``StratifiedKFold(k, shuffle=True, random_state=seed)``
    assigns it, by numpy alone (the sheet job then starts without scikit-learn's second of imports).

    Its algorithm (scikit-learn >= 0.22, ``_make_test_folds``): classes numbered by first
    appearance; the i-th fold gets the class counts of every k-th sample of the sorted class
    numbers, from the i-th on; each class's block of fold numbers is shuffled by one
    ``RandomState(seed)``, class after class. ``tests/io/test_folds.py`` holds it equal to
    scikit-learn's. The sheet's checks have made sure every class has at least ``k`` samples.
    """
    rng = np.random.RandomState(seed)
    _, first, inverse = np.unique(labels, return_index=True, return_inverse=True)
    _, by_appearance = np.unique(first, return_inverse=True)
    encoded = by_appearance[inverse.ravel()]
    n_classes = len(first)
    ordered = np.sort(encoded)
    allocation = np.asarray([np.bincount(ordered[i::k], minlength=n_classes) for i in range(k)])
    folds = np.empty(len(encoded), dtype="i")
    for c in range(n_classes):
        for_class = np.arange(k).repeat(allocation[:, c])
        rng.shuffle(for_class)
        folds[encoded == c] = for_class
    return folds


def held_out_folds(folds: list[str], cv: dict) -> list[str]:
    """The folds that are held out in turn, checked against ``cv.test_folds``."""
    if cv["test_folds"] is None:
        return folds
    chosen = [fold_name(f) for f in cv["test_folds"]]
    for fold in chosen:
        if fold not in folds:
            raise DeepselfError(f"config key cv.test_folds: fold {fold!r} does not exist (folds: {', '.join(folds)})")
    return chosen


def check_folds(sheet: pd.DataFrame, classes: list[str], cv: dict, origin: str) -> None:
    """Every held-out fold must leave every class in its training part, and enough for the development split."""
    fraction = cv["dev_fraction"]
    folds = held_out_folds(sorted(sheet["fold"].unique()), cv)
    training = {fold: sheet.loc[sheet["fold"] != fold, "label"].value_counts() for fold in folds}
    for fold, train in training.items():  # first the worse: a class missing altogether
        absent = [name for name in classes if not train.get(name, 0)]
        if absent:
            raise DeepselfError(
                f"{origin}: fold {fold!r}: class {absent[0]!r} is absent from its training part "
                f"(all its samples are in fold {fold!r})"
            )
    for fold, train in training.items():
        for name in classes:
            n = int(train.get(name, 0))
            if fraction > 0 and n < 2:
                raise DeepselfError(
                    f"{origin}: fold {fold!r}: class {name!r} has {n} sample in the fold's training part, and the "
                    f"development split (cv.dev_fraction {fraction:g}) needs 2: add samples of {name!r} to other "
                    "folds, or set cv.dev_fraction 0"
                )
