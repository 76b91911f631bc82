"""The sample sheet: one row per sample, its label, fold, group and one file per modality.

A user's own sheet (CSV or TSV) or an adapter's sheet is checked here once, labels are renamed,
folds are assigned (:mod:`deepself.io.folds`), and the result is written as ``samples.csv``, the
single source of ids, labels and folds for every later stage. What the workflow checks before any
job runs is :func:`deepself.io.preflight.preflight`.
"""

from __future__ import annotations

import csv
import errno
import logging
import os
import stat
from pathlib import Path

import pandas as pd

from deepself.errors import DeepselfError
from deepself.datasets import adapters
from deepself.io.atomic import atomic_path
from deepself.io.folds import assign_folds, check_class_counts, check_folds, fold_name

log = logging.getLogger(__name__)

META_COLUMNS = ("id", "label", "fold", "group")
# Adapters that write their files in the sheet stage, and the kind of those files.
CONVERTED_KIND = {"aeon": "sensor", "digits": "image"}
# What Path.exists() takes for a missing file (pathlib's _IGNORED_ERRNOS); other errors are raised
_MISSING = (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP)
# Characters of a sheet read to tell its separator (about 2 ms of csv.Sniffer).
_SNIFF_CHARS = 16384
# Labels of the sheet listed in a warning, at most.
_LABELS_SHOWN = 20


def read_user_sheet(path: str | os.PathLike) -> pd.DataFrame:
    """Read a CSV or TSV sample sheet (separator from the extension, else sniffed), all as text.

    The separator of a file that is not ``.tsv``/``.tab`` is sniffed among comma, semicolon and
    tab only (a sheet of one column is comma-separated); a UTF-8 byte-order mark (Excel's "CSV
    UTF-8") is dropped. Rows whose every cell is empty (a spreadsheet's trailing ``,,,``) are
    dropped; the index keeps each row's position in the file (index 0 is row 2, the header being
    row 1).

    Raises
    ------
    DeepselfError
        If the file is missing (naming the absolute path tried), a folder, empty, unreadable, or
        has a header row and no samples.
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
    sep = "\t" if path.suffix.lower() in (".tsv", ".tab") else _sniff_separator(path)
    try:
        sheet = pd.read_csv(path, sep=sep, engine="python", dtype=str, keep_default_na=False,
                            encoding="utf-8-sig")
    except (pd.errors.ParserError, UnicodeDecodeError, pd.errors.EmptyDataError, csv.Error) as err:
        reason = " ".join(str(err).split())
        raise DeepselfError(f"{path}: not a readable CSV/TSV sample sheet ({reason}); write it as comma- or "
                            "tab-separated text with a header row") from None
    sheet.columns = [c.strip() for c in sheet.columns]
    if len(sheet):
        blank = sheet.apply(lambda column: column.str.strip() == "").all(axis=1)
        sheet = sheet[~blank]
    if not len(sheet):
        raise DeepselfError(f"{path}: has a header row ({', '.join(sheet.columns)}) but no samples; add a row per "
                            "sample below it")
    return sheet


def _sniff_separator(path: Path) -> str:
    """Comma, semicolon or tab, from the sheet's first lines; comma when none of them tells (one column)."""
    with open(path, encoding="utf-8-sig", errors="replace") as fh:
        sample = fh.read(_SNIFF_CHARS)
    if len(sample) == _SNIFF_CHARS and "\n" in sample:
        sample = sample[: sample.rindex("\n")]  # whole lines only
    try:
        return csv.Sniffer().sniff(sample, delimiters=",;\t").delimiter
    except csv.Error:
        return ","


def _stem(path: str) -> str:
    """``Path(path).stem`` without building a Path (10,000 file names while the workflow is parsed)."""
    if not path or path in (".", "..") or path.endswith("/") or "/." in path:
        return Path(path).stem
    name = path.rsplit("/", 1)[-1]
    i = name.rfind(".")
    return name[:i] if 0 < i < len(name) - 1 else name


def _resolve_path(value: str, base: Path, real_dirs: dict[str, str], sid: str, column: str, origin: str) -> str:
    """The real path of a sample's file (``Path.resolve``), refusing a missing file or a folder.

    One ``lstat`` a file and one ``realpath`` per folder (cached in ``real_dirs``): the real path of
    a file that is no link is its folder's real path and its name. Links, ``~`` and names that
    ``os.stat`` reads otherwise than pathlib (a trailing ``/``) take pathlib's way.
    """
    if not value:
        raise DeepselfError(f"{origin}: sample {sid!r} has no file in column {column!r}")
    if not (value.startswith("~") or value.endswith(("/", "/.")) or value == "."):
        path = os.path.join(base, value)
        try:
            st = os.lstat(path)
        except OSError as err:
            if err.errno not in _MISSING:
                raise
            st = None
        if st is not None and not stat.S_ISLNK(st.st_mode) and not stat.S_ISDIR(st.st_mode):
            folder, name = os.path.split(path)
            if folder not in real_dirs:
                real_dirs[folder] = os.path.realpath(folder)
            return os.path.join(real_dirs[folder], name)
    p = Path(value).expanduser()
    p = p if p.is_absolute() else base / p
    if not p.exists():
        raise DeepselfError(f"{origin}: sample {sid!r}: file {str(p)!r} does not exist")
    if p.is_dir():
        raise DeepselfError(f"{origin}: sample {sid!r}: {str(p)!r} (column {column!r}) is a directory, not a "
                            "file; list the sample's file itself")
    return str(p.resolve())


def _resolve_paths(sheet: pd.DataFrame, columns: list[str], base: Path, origin: str) -> pd.DataFrame:
    real_dirs: dict[str, str] = {}
    for column in columns:
        sheet[column] = [_resolve_path(value, base, real_dirs, sid, column, origin)
                         for sid, value in zip(sheet["id"], sheet[column])]
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
    hash_cache
        The SQLite file of the files' content hashes (see :mod:`deepself.io.filehash`); None
        hashes every file anew.
    work_dir
        Folder where adapters that convert data (aeon, digits) write their files.

    Returns
    -------
    pandas.DataFrame
        Columns ``id, label, fold[, group], <modality columns>``; ``fold`` is a string.
    """
    sheet, origin, classes = checked_rows(data, cv, work_dir, warn=True,
                                           warn_early=data["adapter"] in CONVERTED_KIND)
    sheet = assign_folds(sheet, cv, origin)
    columns = [m["column"] for m in data["modalities"].values()]
    keep = [c for c in META_COLUMNS if c in sheet.columns] + [c for c in columns if c not in META_COLUMNS]
    sheet = sheet[keep].sort_values("id", kind="stable").reset_index(drop=True)
    check_folds(sheet, classes, cv, origin)
    return sheet


def checked_rows(data: dict, cv: dict, work_dir: str | os.PathLike | None, warn: bool,
                  warn_early: bool = False) -> tuple[pd.DataFrame, str, list[str]]:
    """The sheet's rows checked, paths resolved, labels renamed: all of :func:`build_sheet` but the folds.

    With ``warn``, doubtful but usable input (labels that differ only in case or spaces, a fold
    column that is ignored) is logged as a warning. With ``warn_early``, so is what should be said
    before any job (:func:`deepself.io.preflight.preflight`, or the sheet stage of adapters that
    preflight cannot read): ``data.labels`` renaming a label that no sample has.
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

    _check_columns(sheet, data, origin)
    _set_ids(sheet, columns, origin)
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
    if warn_early:
        _warn_unused_renames(sheet["label"], data["labels"], origin)
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


def _set_ids(sheet: pd.DataFrame, columns: list[str], origin: str) -> None:
    """Fill the ``id`` column in place (the first file's stem if the sheet has none); refuse duplicates, gaps."""
    if "id" not in sheet.columns or (sheet["id"] == "").all():
        sheet["id"] = [_stem(p) for p in sheet[columns[0]]]
    sheet["id"] = sheet["id"].str.strip()
    dup = sheet["id"][sheet["id"].duplicated(keep=False)]
    if len(dup):
        rows = [str(i + 2) for i in dup.index[dup == dup.iloc[0]]]
        raise DeepselfError(f"{origin}: duplicate sample id {dup.iloc[0]!r} on rows {' and '.join(rows)} "
                            "(row 1 is the header); give each sample its own id")
    empty = sheet.index[sheet["id"] == ""]
    if len(empty):
        raise DeepselfError(f"{origin}: row {empty[0] + 2} has an empty id")


def _check_columns(sheet: pd.DataFrame, data: dict, origin: str) -> None:
    """Raise unless the sheet has a ``label`` column and every modality's path column."""
    for column in ("label", *(m["column"] for m in data["modalities"].values())):
        if column in sheet.columns:
            continue
        if column == "label":
            fix = "add a label column (each sample's class)"
        else:
            name = next(n for n, m in data["modalities"].items() if m["column"] == column)
            fix = (f"add it, or set data.modalities.{name}.column to the column that holds the paths of "
                   f"{name}'s files")
        raise DeepselfError(f"{origin}: sample sheet has no column {column!r} (columns: {', '.join(sheet.columns)}); "
                            f"{fix}")


def _warn_unused_renames(labels: pd.Series, renames: dict | None, origin: str) -> None:
    """Warn about ``data.labels`` entries that rename a label no sample has (a misspelt one renames nothing)."""
    present = sorted(labels.unique())
    unused = [old for old in renames or {} if old not in present]
    if unused:
        shown = ", ".join(map(repr, present[:_LABELS_SHOWN])) + (f", ... ({len(present)} in all)"
                                                                   if len(present) > _LABELS_SHOWN else "")
        log.warning("%s: data.labels renames %s, which no sample has (the sheet's labels: %s): check its "
                    "spelling, or remove it", origin, " and ".join(map(repr, unused)), shown)


def _warn_label_spellings(labels: pd.Series, origin: str) -> None:
    spellings: dict[str, list[str]] = {}
    for label in sorted(labels.unique()):
        spellings.setdefault(label.strip().casefold(), []).append(label)
    for variants in spellings.values():
        if len(variants) > 1:
            log.warning("%s: labels %s differ only in case or surrounding spaces; spaces around a label are dropped, "
                        "its case is kept (they are different classes): if they are one class, write them alike "
                        "or map one to the other with data.labels", origin, " and ".join(map(repr, variants)))


def class_names(sheet: pd.DataFrame, data: dict) -> list[str]:
    """Class names in report order: ``data.classes`` if given, else the sorted labels."""
    if data["classes"]:
        return list(data["classes"])
    return sorted(sheet["label"].unique())


def write_sheet(sheet: pd.DataFrame, path: str | os.PathLike) -> None:
    with atomic_path(path) as tmp:
        sheet.to_csv(tmp, index=False)


def read_sheet(path: str | os.PathLike) -> pd.DataFrame:
    """Read a ``samples.csv`` written by :func:`write_sheet` (every column as text)."""
    return pd.read_csv(path, dtype=str, keep_default_na=False)
