"""The sample sheet: one row per sample, its label, fold, group and one file per modality.

A user's own sheet (CSV or TSV) or an adapter's sheet is checked here once, labels are renamed,
folds are assigned, and the result is written as ``samples.csv``, the single source of ids,
labels and folds for every later stage.
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pandas as pd

from deepself.errors import DeepselfError
from deepself.io import adapters
from deepself.io.store import atomic_path

META_COLUMNS = ("id", "label", "fold", "group")


def read_user_sheet(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV or TSV sample sheet (separator from the extension, else sniffed), all as text."""
    path = Path(path)
    if not path.exists():
        raise DeepselfError(f"{path}: no such sample sheet")
    sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else None
    try:
        sheet = pd.read_csv(path, sep=sep, engine="python", dtype=str, keep_default_na=False)
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError) as err:
        raise DeepselfError(f"{path}: not a readable CSV/TSV sample sheet ({err})") from None
    sheet.columns = [c.strip() for c in sheet.columns]
    return sheet


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
    adapter = data["adapter"]
    columns = [m["column"] for m in data["modalities"].values()]
    if adapter == "sheet":
        origin = data["sheet"]
        sheet = read_user_sheet(origin)
        base = Path(origin).resolve().parent
    else:
        origin = f"data.adapter {adapter}"
        options = {"dims": data["dims"]} if adapter == "aeon" and data["dims"] else {}
        sheet = adapters.ADAPTERS[adapter](data["root"], Path(work_dir), **options).astype(str)
        base = Path.cwd()

    missing = [c for c in ("label", *columns) if c not in sheet.columns]
    if missing:
        raise DeepselfError(
            f"{origin}: sample sheet has no column {missing[0]!r} (columns: {', '.join(sheet.columns)})"
        )
    if "id" not in sheet.columns or (sheet["id"] == "").all():
        sheet["id"] = [Path(p).stem for p in sheet[columns[0]]]
    sheet["id"] = sheet["id"].str.strip()
    dup = sheet["id"][sheet["id"].duplicated()]
    if len(dup):
        raise DeepselfError(f"{origin}: duplicate sample id {dup.iloc[0]!r} (ids must be unique)")
    empty = sheet.index[sheet["id"] == ""]
    if len(empty):
        raise DeepselfError(f"{origin}: row {empty[0] + 2} has an empty id")
    sheet = _resolve_paths(sheet, columns, base, origin)

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

    sheet = assign_folds(sheet, cv, origin)
    keep = [c for c in META_COLUMNS if c in sheet.columns] + [c for c in columns if c not in META_COLUMNS]
    sheet = sheet[keep].sort_values("id", kind="stable").reset_index(drop=True)
    check_folds(sheet, classes, cv, origin)
    return sheet


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
        sheet["fold"] = sheet["fold"].astype(str).str.strip()
        blank = sheet["id"][sheet["fold"] == ""]
        if len(blank):
            raise DeepselfError(f"{origin}: sample {blank.iloc[0]!r} has no fold (cv.folds is from_sheet)")
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
    counts = sheet["label"].value_counts()
    if counts.min() < k:
        raise DeepselfError(
            f"cv.folds: {k} folds but class {counts.idxmin()!r} has only {counts.min()} samples"
        )
    folds = np.empty(len(sheet), dtype=object)
    for i, (_, test) in enumerate(splitter.split(np.zeros(len(sheet)), sheet["label"], groups)):
        folds[test] = str(i + 1)
    sheet["fold"] = folds
    return sheet


def held_out_folds(folds: list[str], cv: dict) -> list[str]:
    """The folds that are held out in turn, checked against ``cv.test_folds``."""
    if cv["test_folds"] is None:
        return folds
    chosen = [str(f) for f in cv["test_folds"]]
    for fold in chosen:
        if fold not in folds:
            raise DeepselfError(f"config key cv.test_folds: fold {fold!r} does not exist (folds: {', '.join(folds)})")
    return chosen


def check_folds(sheet: pd.DataFrame, classes: list[str], cv: dict, origin: str) -> None:
    """Every held-out fold must leave every class in its training part."""
    for fold in held_out_folds(sorted(sheet["fold"].unique()), cv):
        train = set(sheet.loc[sheet["fold"] != fold, "label"])
        absent = [c for c in classes if c not in train]
        if absent:
            raise DeepselfError(
                f"{origin}: fold {fold!r}: class {absent[0]!r} is absent from its training part "
                f"(all its samples are in fold {fold!r})"
            )


def fold_names(data: dict, cv: dict) -> list[str]:
    """The held-out folds of an experiment, known before any job runs (the job graph needs them)."""
    if cv["folds"] != "from_sheet":
        folds = [str(i + 1) for i in range(cv["folds"])]
    elif data["adapter"] == "sheet":
        sheet = read_user_sheet(data["sheet"])
        if "fold" not in sheet.columns:
            raise DeepselfError(f"{data['sheet']}: cv.folds is from_sheet but the sheet has no fold column")
        folds = sorted(set(sheet["fold"].astype(str).str.strip()) - {""})
    else:
        folds = adapters.static_folds(data["adapter"], data["root"])
        if folds is None:
            raise DeepselfError(
                f"config key cv.folds: data.adapter {data['adapter']} defines no folds; set cv.folds to a number"
            )
    return held_out_folds(folds, cv)


def write_sheet(sheet: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        sheet.to_csv(tmp, index=False)


def read_sheet(path: str | os.PathLike) -> pd.DataFrame:
    """Read a ``samples.csv`` written by :func:`write_sheet` (every column as text)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)
