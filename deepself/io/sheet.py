"""The sample sheet: one row per sample, its label, fold, group and one file per modality.

A user's own sheet (CSV or TSV) or an adapter's sheet is checked here once, labels are renamed,
folds are assigned, and the result is written as ``samples.csv``, the single source of ids,
labels and folds for every later stage.
"""

from __future__ import annotations

import csv
import hashlib
import logging
import math
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from deepself.errors import DeepselfError
from deepself.io import adapters
from deepself.io.readers import kind_of
from deepself.io.store import atomic_path

log = logging.getLogger(__name__)

META_COLUMNS = ("id", "label", "fold", "group")
# A fold name becomes part of file names (fold<name>/) and a command-line argument: no path
# separators, no braces (Snakemake would read them as wildcards), no leading "-" (an option).
_FOLD_NAME = re.compile(r"^[^-/\\{}][^/\\{}]*$")
# Adapters whose sheet only lists files (cheap enough to build while the workflow is parsed), and
# the kind of files of those that write their files in the sheet stage.
_LISTING_ADAPTERS = ("esc10", "bonn", "imagefolder")
_CONVERTED_KIND = {"aeon": "sensor", "digits": "image"}


def read_user_sheet(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV or TSV sample sheet (separator from the extension, else sniffed), all as text.

    Rows whose every cell is empty (a spreadsheet's trailing ``,,,``) are dropped; the index keeps
    each row's position in the file (index 0 is row 2, the header being row 1).

    Raises
    ------
    DeepselfError
        If the file is missing (naming the absolute path tried), a folder, empty or unreadable.
    """
    path = Path(path)
    if not path.exists():
        tried = path if path.is_absolute() else Path.cwd() / path
        raise DeepselfError(f"{path}: no such sample sheet (looked for {tried}; relative paths are resolved against "
                            "the working folder); give its absolute path or run from the folder it is relative to")
    if path.is_dir():
        raise DeepselfError(f"{path}: is a folder, not a sample sheet; give the CSV or TSV file")
    if path.stat().st_size == 0:
        raise DeepselfError(f"{path}: empty file (0 bytes); a sample sheet needs a header row (label, path, ...) "
                            "and a row per sample")
    sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else None
    try:
        sheet = pd.read_csv(path, sep=sep, engine="python", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError, csv.Error) as err:
        reason = " ".join(str(err).split())
        raise DeepselfError(f"{path}: not a readable CSV/TSV sample sheet ({reason}); write it as comma- or "
                            "tab-separated text with a header row") from None
    sheet.columns = [c.strip() for c in sheet.columns]
    blank = sheet.apply(lambda column: column.str.strip() == "").all(axis=1)
    return sheet[~blank]


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


def _resolve_paths(sheet: pd.DataFrame, columns: list[str], base: Path, origin: str) -> pd.DataFrame:
    for column in columns:
        resolved = []
        for sid, value in zip(sheet["id"], sheet[column]):
            if not value:
                raise DeepselfError(f"{origin}: sample {sid!r} has no file in column {column!r}")
            p = Path(value).expanduser()
            p = p if p.is_absolute() else base / p
            if not p.exists():
                raise DeepselfError(f"{origin}: sample {sid!r}: file {str(p)!r} does not exist")
            resolved.append(str(p.resolve()))
        sheet[column] = resolved
        # resolved paths: a file listed twice under different names (links, ../) is found too
        twice = sheet[sheet[column].duplicated(keep=False)]
        if len(twice):
            same = twice[twice[column] == twice[column].iloc[0]]["id"]
            raise DeepselfError(f"{origin}: samples {same.iloc[0]!r} and {same.iloc[1]!r} have the same file "
                                f"{twice[column].iloc[0]!r} (column {column!r}); give each sample its own file or "
                                "drop the copy")
    return sheet


def build_sheet(data: dict, cv: dict, work_dir: str | os.PathLike) -> pd.DataFrame:
    """Make the checked sample sheet of an experiment.

    Parameters
    ----------
    data, cv
        The validated ``data`` and ``cv`` sections of the config.
    work_dir
        Folder where adapters that convert data (aeon, digits) write their files.

    Returns
    -------
    pandas.DataFrame
        Columns ``id, label, fold[, group], <modality columns>``; ``fold`` is a string.
    """
    sheet, origin, classes = _checked_rows(data, cv, work_dir, warn=True)
    sheet = assign_folds(sheet, cv, origin)
    columns = [m["column"] for m in data["modalities"].values()]
    keep = [c for c in META_COLUMNS if c in sheet.columns] + [c for c in columns if c not in META_COLUMNS]
    sheet = sheet[keep].sort_values("id", kind="stable").reset_index(drop=True)
    check_folds(sheet, classes, cv, origin)
    return sheet


def _checked_rows(data: dict, cv: dict, work_dir: str | os.PathLike | None,
                  warn: bool) -> tuple[pd.DataFrame, str, list[str]]:
    """The sheet's rows checked, paths resolved, labels renamed: all of :func:`build_sheet` but the folds.

    With ``warn``, doubtful but usable input (labels that differ only in case or spaces, a fold
    column that is ignored) is logged as a warning.
    """
    adapter = data["adapter"]
    columns = [m["column"] for m in data["modalities"].values()]
    if adapter == "sheet":
        origin = data["sheet"]
        sheet = read_user_sheet(origin)
        base = Path(origin).resolve().parent
    else:
        origin = f"data.adapter {adapter}"
        options = {"dims": data["dims"]} if adapter == "aeon" and data["dims"] else {}
        sheet = adapters.ADAPTERS[adapter](data["root"], Path(work_dir or "."), **options).astype(str)
        base = Path.cwd()

    missing = [c for c in ("label", *columns) if c not in sheet.columns]
    if missing:
        raise DeepselfError(
            f"{origin}: sample sheet has no column {missing[0]!r} (columns: {', '.join(sheet.columns)})"
        )
    if "id" not in sheet.columns or (sheet["id"] == "").all():
        sheet["id"] = [Path(p).stem for p in sheet[columns[0]]]
    sheet["id"] = sheet["id"].str.strip()
    dup = sheet["id"][sheet["id"].duplicated(keep=False)]
    if len(dup):
        rows = [str(i + 2) for i in dup.index[dup == dup.iloc[0]]]
        raise DeepselfError(f"{origin}: duplicate sample id {dup.iloc[0]!r} on rows {' and '.join(rows)} "
                            "(row 1 is the header); give each sample its own id")
    empty = sheet.index[sheet["id"] == ""]
    if len(empty):
        raise DeepselfError(f"{origin}: row {empty[0] + 2} has an empty id")
    sheet = _resolve_paths(sheet, columns, base, origin)

    if warn:
        _warn_label_spellings(sheet["label"], origin)
        if "fold" in sheet.columns and cv["folds"] != "from_sheet" and adapter == "sheet":
            log.warning("%s: the sheet's fold column is ignored, cv.folds is %s: to use it, set cv.folds: from_sheet",
                        origin, cv["folds"])
    sheet["label"] = sheet["label"].str.strip()
    unlabelled = sheet["id"][sheet["label"] == ""]
    if len(unlabelled):
        raise DeepselfError(f"{origin}: sample {unlabelled.iloc[0]!r} has no label")
    if data["labels"]:
        sheet["label"] = sheet["label"].map(lambda label: data["labels"].get(label, label))
    classes = class_names(sheet, data)
    unknown = sheet[~sheet["label"].isin(classes)]
    if len(unknown):
        row = unknown.iloc[0]
        raise DeepselfError(
            f"{origin}: sample {row['id']!r} has label {row['label']!r}, which is not in "
            f"data.classes ({', '.join(classes)})"
        )
    if "fold" in sheet.columns:
        sheet["fold"] = sheet["fold"].map(fold_name)
    check_class_counts(sheet, classes, cv, origin)
    return sheet, origin, classes


def _warn_label_spellings(labels: pd.Series, origin: str) -> None:
    spellings: dict[str, list[str]] = {}
    for label in sorted(labels.unique()):
        spellings.setdefault(label.strip().casefold(), []).append(label)
    for variants in spellings.values():
        if len(variants) > 1:
            log.warning("%s: labels %s differ only in case or surrounding spaces; spaces around a label are dropped, "
                        "its case is kept (they are different classes): if they are one class, write them alike "
                        "or map one to the other with data.labels", origin, " and ".join(map(repr, variants)))


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


def class_names(sheet: pd.DataFrame, data: dict) -> list[str]:
    """Class names in report order: ``data.classes`` if given, else the sorted labels."""
    if data["classes"]:
        return list(data["classes"])
    return sorted(sheet["label"].unique())


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
    # sklearn (with scipy.stats, ~1 s) only here: the readers of a sheet, ingest and the
    # workflow's parsing included, start without it.
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedKFold

    k = cv["folds"]
    groups = sheet["group"].to_numpy() if "group" in sheet.columns and (sheet["group"] != "").all() else None
    if groups is not None:
        splitter = StratifiedGroupKFold(n_splits=k, shuffle=True, random_state=cv["seed"])
    else:
        splitter = StratifiedKFold(n_splits=k, shuffle=True, random_state=cv["seed"])
    folds = np.empty(len(sheet), dtype=object)
    for i, (_, test) in enumerate(splitter.split(np.zeros(len(sheet)), sheet["label"], groups)):
        folds[test] = str(i + 1)
    sheet["fold"] = folds
    return sheet


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


@dataclass
class Preflight:
    """What the workflow learns from the samples before any job runs.

    ``folds``: the held-out folds. ``digests``: per modality, a digest of the path, size and
    modification time (ns) of each of its files (modalities whose files are written by the sheet
    stage have none). ``listing``: a digest of every path of the sheet.
    """

    folds: list[str]
    digests: dict[str, str] = field(default_factory=dict)
    listing: str = ""


def preflight(data: dict, cv: dict) -> Preflight:
    """Check the samples as far as that needs no job, and say what the job graph needs to know.

    Runs while the workflow is parsed (and in ``deepself check-config``): the sheet's rows, files,
    labels, class counts and fold names are checked as the sheet stage will check them, and a
    sensor modality without ``sample_rate`` is refused. Only what needs the folds assigned
    (k-fold) or files converted (aeon, digits) waits for the sheet stage.

    Why digests of sizes and modification times: Snakemake reruns a job when an input is newer
    than its output, or when a parameter changed since the job last ran (its ``params`` trigger,
    Snakemake 8). The ingest rule takes its modality's digest as a parameter, so that editing,
    replacing or restoring (with an older time: ``cp -p``, ``rsync -a``, ``tar``) any listed file
    reruns ingest and, through the newer stores, everything after it, and a dry run says so
    ("Params have changed"). The files themselves as inputs would miss a replacement with an
    older time and put every file into the job graph; checksums would read all the data on every
    run. A stat per file costs microseconds: see benchmarks/README.md for 10,000 files.

    Parameters
    ----------
    data, cv
        The validated ``data`` and ``cv`` sections of the config.

    Returns
    -------
    Preflight

    Raises
    ------
    DeepselfError
        As :func:`build_sheet` would, and for a missing ``sample_rate`` of sensor files.
    """
    adapter = data["adapter"]
    sheet = None
    if adapter == "sheet" or adapter in _LISTING_ADAPTERS:
        sheet, origin, _ = _checked_rows(data, cv, None, warn=False)
    for name, modality in data["modalities"].items():
        if modality["sample_rate"] or modality["kind"] in ("audio", "image"):
            continue
        if sheet is None:
            paths = [] if _CONVERTED_KIND[adapter] != "sensor" else [f"data.adapter {adapter}"]
        else:
            paths = [p for p in sheet[modality["column"]] if kind_of(p) == "sensor"]
        if paths:
            raise DeepselfError(f"config key data.modalities.{name}.sample_rate: missing, and {paths[0]} holds a "
                                "sensor signal (text table or .npy), which carries no sample rate: set it in Hz")
    plan = Preflight(_folds(data, cv, sheet))
    if sheet is not None:
        check_fold_names(plan.folds, origin)
        for name, modality in data["modalities"].items():
            plan.digests[name] = _digest(f"{p}\t{st.st_size}\t{st.st_mtime_ns}"
                                         for p in sorted(set(sheet[modality["column"]])) for st in [os.stat(p)])
        plan.listing = _digest(sorted(set(sheet[[m["column"] for m in data["modalities"].values()]].to_numpy().ravel())))
        if cv["folds"] == "from_sheet":
            check_folds(sheet.assign(fold=sheet["fold"].map(fold_name)), class_names(sheet, data), cv, origin)
    return plan


def _digest(lines) -> str:
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode() + b"\n")
    return h.hexdigest()


def _folds(data: dict, cv: dict, sheet: pd.DataFrame | None) -> list[str]:
    if cv["folds"] != "from_sheet":
        folds = [str(i + 1) for i in range(cv["folds"])]
    elif sheet is not None and "fold" in sheet.columns and data["adapter"] == "sheet":
        folds = sorted(set(sheet["fold"].map(fold_name)) - {""})
    elif data["adapter"] == "sheet":
        raise DeepselfError(f"{data['sheet']}: cv.folds is from_sheet but the sheet has no fold column")
    else:
        folds = adapters.static_folds(data["adapter"], data["root"])
        if folds is None:
            raise DeepselfError(
                f"config key cv.folds: data.adapter {data['adapter']} defines no folds; set cv.folds to a number"
            )
    return held_out_folds(folds, cv)


def fold_names(data: dict, cv: dict) -> list[str]:
    """The held-out folds of an experiment, known before any job runs (the job graph needs them)."""
    return preflight(data, cv).folds


def write_sheet(sheet: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        sheet.to_csv(tmp, index=False)


def read_sheet(path: str | os.PathLike) -> pd.DataFrame:
    """Read a ``samples.csv`` written by :func:`write_sheet` (every column as text)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)
