"""The sample sheet: one row per sample, its label, fold, group and one file per modality.

A user's own sheet (CSV or TSV) or an adapter's sheet is checked here once, labels are renamed,
folds are assigned, and the result is written as ``samples.csv``, the single source of ids,
labels and folds for every later stage.
"""

from __future__ import annotations

import csv
import errno
import hashlib
import logging
import math
import os
import re
import stat
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from deepself.errors import DeepselfError
from deepself.io import adapters, readers
from deepself.io.filehash import HashCache
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
# What Path.exists() takes for a missing file (pathlib's _IGNORED_ERRNOS); other errors are raised
_MISSING = (errno.ENOENT, errno.ENOTDIR, errno.EBADF, errno.ELOOP)
# Characters of a sheet read to tell its separator (about 2 ms of csv.Sniffer).
_SNIFF_CHARS = 16384
# Labels of the sheet listed in a warning, at most.
_LABELS_SHOWN = 20
# Recordings are zero-padded to the longest: a longest over this many times the median is warned
# about before any job (more than three quarters of a typical padded recording would be zeros).
LENGTH_SPREAD = 4.0


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
    sheet, origin, classes = _checked_rows(data, cv, work_dir, warn=True,
                                           warn_early=data["adapter"] in _CONVERTED_KIND)
    sheet = assign_folds(sheet, cv, origin)
    columns = [m["column"] for m in data["modalities"].values()]
    keep = [c for c in META_COLUMNS if c in sheet.columns] + [c for c in columns if c not in META_COLUMNS]
    sheet = sheet[keep].sort_values("id", kind="stable").reset_index(drop=True)
    check_folds(sheet, classes, cv, origin)
    return sheet


def _checked_rows(data: dict, cv: dict, work_dir: str | os.PathLike | None, warn: bool,
                  warn_early: bool = False) -> tuple[pd.DataFrame, str, list[str]]:
    """The sheet's rows checked, paths resolved, labels renamed: all of :func:`build_sheet` but the folds.

    With ``warn``, doubtful but usable input (labels that differ only in case or spaces, a fold
    column that is ignored) is logged as a warning. With ``warn_early``, so is what should be said
    before any job (:func:`preflight`, or the sheet stage of adapters that preflight cannot read):
    ``data.labels`` renaming a label that no sample has.
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


def preflight(data: dict, cv: dict, hash_cache: str | os.PathLike | None = None) -> Preflight:
    """Check the samples as far as that needs no job, and say what the job graph needs to know.

    Runs while the workflow is parsed (and in ``deepself check-config``): the sheet's rows, files,
    labels, class counts and fold names are checked as the sheet stage will check them, and a
    sensor modality without ``sample_rate`` is refused. Only what needs the folds assigned
    (k-fold) or files converted (aeon, digits) waits for the sheet stage.

    Why digests of the files' contents: Snakemake reruns a job when an input is newer than its
    output, or when a parameter changed since the job last ran (its ``params`` trigger, Snakemake
    8). The ingest rule takes its modality's digest (each file's path and SHA-256) as a parameter,
    so that editing, replacing or restoring (with an older time: ``cp -p``, ``rsync -a``, ``tar``)
    any listed file reruns ingest and, through the newer stores, everything after it, and a dry run
    says so ("Params have changed"), while ``touch`` or a rewrite with the same bytes reruns
    nothing. The files themselves as inputs would rerun on a touch, miss a replacement with an
    older time and put every file into the job graph. The hashes are cached by each file's stat
    (:mod:`deepself.io.filehash`, in ``hash_cache``): an unchanged file costs one stat, a changed
    one is read once. See benchmarks/README.md for 10,000 files.

    The headers of signal files are read too (see :func:`_check_signal_headers`): a 2-D ``.npy``
    array that looks saved ``(channels, time)`` is refused, and recordings of very different
    lengths, which ingest would zero-pad to the longest, are warned about. Warnings are logged
    (``deepself.io.sheet``): on the console while the workflow is parsed and in ``check-config``.

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
        As :func:`build_sheet` would, for a missing ``sample_rate`` of sensor files, and for a
        ``.npy`` file whose 2-D array has more columns than rows.
    """
    adapter = data["adapter"]
    sheet = None
    if adapter == "sheet" or adapter in _LISTING_ADAPTERS:
        sheet, origin, _ = _checked_rows(data, cv, None, warn=False, warn_early=True)
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
    hashes = HashCache(hash_cache) if sheet is not None else None
    if sheet is not None:
        for name, modality in data["modalities"].items():
            _check_signal_headers(sheet, name, modality, hashes)
    plan = Preflight(_folds(data, cv, sheet))
    if sheet is not None:
        check_fold_names(plan.folds, origin)
        for name, modality in data["modalities"].items():
            files = sorted(set(sheet[modality["column"]]))
            content = hashes.hashes(files)  # resolved by _resolve_paths: absolute and normalised
            plan.digests[name] = _digest(f"{f}\t{content[f]}" for f in files)
        plan.listing = _digest(sorted(set(sheet[[m["column"] for m in data["modalities"].values()]].to_numpy().ravel())))
        if cv["folds"] == "from_sheet":
            check_folds(sheet.assign(fold=sheet["fold"].map(fold_name)), class_names(sheet, data), cv, origin)
    return plan


def _npy_shape(path: str) -> list[int] | None:
    try:
        return list(readers.npy_shape(path))
    except DeepselfError:
        return None  # ingest's reader names what is wrong with it (empty, truncated, ...)


def _audio_info(path: str) -> list | None:
    import soundfile  # only sheets with audio need it

    try:
        info = soundfile.info(path)
    except (RuntimeError, TypeError, ValueError, OSError):
        return None
    return [info.frames, info.samplerate, info.channels]


def _check_signal_headers(sheet: pd.DataFrame, name: str, modality: dict, cache: HashCache) -> None:
    """Check what the headers of a modality's signal files tell, reading nothing else.

    Every ``.npy`` header is read (shape: :func:`deepself.io.readers.check_npy_layout`). Without
    ``length_s``, ingest zero-pads every recording to the longest, so the durations that headers
    give (``.npy`` at ``sample_rate``; audio by ``soundfile.info``, about 0.06 ms a file) are
    compared: a longest recording more than :data:`LENGTH_SPREAD` times the median is warned
    about, with the padded size and the fix. Text tables are not measured (their length needs the
    whole file read): ingest, which reads them anyway, warns about them. A file whose header
    cannot be read is left to ingest, whose reader names what is wrong with it.
    """
    if modality["kind"] == "image":
        return
    measure = not modality["length_s"]
    column = list(zip(sheet["id"], sheet[modality["column"]]))
    suffix = {path: os.path.splitext(path)[1].lower() for _, path in column}
    shapes = cache.headers("npy_shape", [p for p in suffix if suffix[p] == ".npy"], _npy_shape)
    infos = cache.headers("audio_info", [p for p in suffix if suffix[p] in readers.AUDIO_EXT], _audio_info) \
        if measure else {}
    lengths = []  # (seconds, channels, sample id, rate) of the files whose header tells
    for sid, path in column:
        if shapes.get(path) is not None:
            shape = tuple(shapes[path])
            readers.check_npy_layout(path, shape)
            if measure and modality["sample_rate"] and len(shape) in (1, 2):
                channels = 1 if len(shape) == 1 else shape[1]
                lengths.append((shape[0] / modality["sample_rate"], channels, sid, modality["sample_rate"]))
        elif infos.get(path) is not None:
            frames, rate, channels = infos[path]
            lengths.append((frames / rate, channels, sid, rate))
    if lengths:
        _warn_length_spread(lengths, name, modality, len(sheet))


def _warn_length_spread(lengths: list[tuple[float, int, str, float]], name: str, modality: dict,
                        n_samples: int) -> None:
    """Warn when the longest recording is over :data:`LENGTH_SPREAD` times the median: all are padded to it."""
    seconds = np.array([length[0] for length in lengths])
    median, (longest, channels, sid, rate) = float(np.median(seconds)), max(lengths)
    if longest <= LENGTH_SPREAD * median:
        return
    padded = math.ceil(longest * (modality["resample"] or modality["sample_rate"] or rate))
    key = f"data.modalities.{name}"
    log.warning("%s: recordings of %g to %g s, median %g s: ingest zero-pads every one to the longest, sample %r "
                "(%g s, %.0fx the median) (%d x %d x %d float32 = %s in the store, and every feature map and "
                "training batch padded alike); set %s.length_s to crop or pad every recording to that many seconds "
                "(e.g. %g), or split the long recordings into pieces of the usual length", key, seconds.min(),
                longest, median, sid, longest, longest / median, n_samples, channels, padded,
                _size(4.0 * n_samples * channels * padded), key, median)


def _size(n_bytes: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n_bytes < 1000 or unit == "GB":
            return f"{n_bytes:.3g} {unit}"
        n_bytes /= 1000
    return ""


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
