"""Turn known data layouts into a sample sheet: one row per sample, files, label, fold, group.

A sheet is a :class:`pandas.DataFrame` with the columns ``id`` (unique), one path column per
modality (``path`` when there is one modality; absolute paths), ``label``, and where the layout
defines them ``fold`` (official split) and ``group`` (samples that must share a fold), all as
strings, rows sorted by ``id``.

Layouts that are folders of files (ESC-10, Bonn EEG, an image folder) are listed as they are;
layouts that ship inside a Python package (aeon's time series, scikit-learn's digits) are written
out as one file per sample first, so that every later stage reads files the same way.
aeon's ``.ts`` files are parsed in :mod:`deepself.datasets.aeon`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Callable

import numpy as np
import pandas as pd

from deepself.errors import DeepselfError
from deepself.io.atomic import atomic_path
from deepself.io.readers import AUDIO_EXT, IMAGE_EXT

BONN_SETS = ("Z", "O", "N", "F", "S")
AEON_SPLITS = ("train", "test")

# ESC-50/ESC-10 names: class folders "001 - Dog bark", clips "<fold>-<freesound id>-<take>".
_ESC_CLASS_DIR = re.compile(r"^\d+\s*-\s*(?P<name>.+)$")
_ESC_CLIP = re.compile(r"^(?P<fold>[^-]+)-(?P<source>[^-]+)-(?P<take>.+)$")


def sheet_esc10(root: str | os.PathLike) -> pd.DataFrame:
    """List the ESC-10 (or ESC-50) clips of a folder as a sample sheet.

    Parameters
    ----------
    root : str or os.PathLike
        Folder holding ``<NNN - Class name>/<fold>-<freesound id>-<take>.ogg`` (or ``.wav``,
        ``.flac``); other files (README, spreadsheets) are ignored.

    Returns
    -------
    pandas.DataFrame
        Columns ``id`` (file stem), ``path``, ``label`` (class name without its number, e.g.
        ``"Dog bark"``), ``fold`` (the official fold, the name's part before the first ``-``) and
        ``group`` (the freesound id: clips cut from one recording), sorted by ``id``.

    Raises
    ------
    DeepselfError
        If ``root`` is missing, holds no clips, or a clip's name or its class folder's name does
        not follow the layout.

    References
    ----------
    K. J. Piczak, "ESC: Dataset for Environmental Sound Classification", ACM Multimedia 2015.
    """
    rows = []
    for class_dir, label in _esc_class_dirs(root):
        for clip in _files(class_dir, AUDIO_EXT):
            fold, source = _esc_fold_and_source(clip)
            rows.append({"id": clip.stem, "path": _absolute(clip), "label": label, "fold": fold,
                         "group": source})
    return _finish(rows, root, "ESC-10 clips (<NNN - Class name>/<fold>-<freesound id>-<take>.ogg)")


def sheet_bonn(root: str | os.PathLike) -> pd.DataFrame:
    """List the University of Bonn EEG segments of a folder as a sample sheet.

    Parameters
    ----------
    root : str or os.PathLike
        Folder holding the sets ``Z, O, N, F, S`` (the paper's A-E; S is seizure), each a folder
        of single-channel ``.txt`` segments (any case: set N ships ``N001.TXT``). A set that is
        absent is left out, so a two-set task needs only its two folders.

    Returns
    -------
    pandas.DataFrame
        Columns ``id`` (file stem), ``path``, ``label`` (the set letter), sorted by ``id``. The
        data set defines no folds.

    Raises
    ------
    DeepselfError
        If ``root`` is missing or none of its set folders holds a ``.txt`` file.

    References
    ----------
    R. G. Andrzejak et al., "Indications of nonlinear deterministic and finite-dimensional
    structures in time series of brain electrical activity", Phys. Rev. E 64, 061907 (2001).
    """
    root_dir = _existing_dir(root)
    rows = []
    for letter in BONN_SETS:
        set_dir = root_dir / letter
        if set_dir.is_dir():
            rows += [{"id": segment.stem, "path": _absolute(segment), "label": letter}
                     for segment in _files(set_dir, (".txt",))]
    return _finish(rows, root, "Bonn EEG segments ({Z,O,N,F,S}/*.txt)")


def sheet_imagefolder(root: str | os.PathLike) -> pd.DataFrame:
    """List a folder of images sorted by split and class as a sample sheet.

    Parameters
    ----------
    root : str or os.PathLike
        Folder holding ``<split>/<class>/<image>`` with images ending in one of
        :data:`~deepself.io.readers.IMAGE_EXT` (any case), e.g. FER-2013's ``train/happy/1.jpg``.

    Returns
    -------
    pandas.DataFrame
        Columns ``id`` (``"<split>-<class>-<stem>"``), ``path``, ``label`` (the class folder),
        ``fold`` (the split folder), sorted by ``id``.

    Raises
    ------
    DeepselfError
        If ``root`` is missing, holds no images at ``<split>/<class>/``, or two images get the
        same id.
    """
    rows = []
    for split_dir in _imagefolder_splits(root):
        for class_dir in _subdirs(split_dir):
            rows += [{"id": f"{split_dir.name}-{class_dir.name}-{image.stem}", "path": _absolute(image),
                      "label": class_dir.name, "fold": split_dir.name}
                     for image in _files(class_dir, IMAGE_EXT)]
    return _finish(rows, root, "images (<split>/<class>/<image>)")


def sheet_digits(out_dir: str | os.PathLike) -> pd.DataFrame:
    """Write scikit-learn's handwritten digits as 8-bit grey PNG files and list them.

    Parameters
    ----------
    out_dir : str or os.PathLike
        Where ``<label>/digit_<index:04d>.png`` files are written: 1,797 images of 8 x 8 pixels,
        the data set's 17 grey levels (0-16) scaled to 0-255.

    Returns
    -------
    pandas.DataFrame
        Columns ``id`` (``"digit_<index:04d>"``), ``path``, ``label`` (the digit), sorted by
        ``id``. The data set defines no folds.

    References
    ----------
    E. Alpaydin and C. Kaynak, "Optical Recognition of Handwritten Digits", UCI Machine Learning
    Repository (1998).
    """
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    grey = np.rint(digits.images * (255.0 / 16.0)).astype(np.uint8)
    out_dir = Path(out_dir)
    rows = []
    for index, (image, target) in enumerate(zip(grey, digits.target)):
        label = str(int(target))
        path = out_dir / label / f"digit_{index:04d}.png"
        with atomic_path(path) as tmp:
            # The temporary name has no .png suffix for Pillow to guess the format from.
            Image.fromarray(image).save(tmp, format="PNG")
        rows.append({"id": f"digit_{index:04d}", "path": _absolute(path), "label": label})
    return _finish(rows, out_dir, "digits")


def static_folds(adapter: str, root: str | None) -> list[str] | None:
    """The fold names a layout defines, from folder and file names only, without reading data.

    The workflow calls this while it builds its job graph, before any sheet exists.

    Parameters
    ----------
    adapter : str
        A name of :data:`ADAPTERS`.
    root : str or None
        The adapter's ``root`` (a folder, or the data set name for ``aeon``).

    Returns
    -------
    list of str or None
        Sorted fold names (the ``fold`` values the adapter's sheet will hold), or None when the
        layout defines no folds (``bonn``, ``digits``).

    Raises
    ------
    DeepselfError
        If ``adapter`` is unknown or its ``root`` cannot be listed.
    """
    _check_adapter(adapter)
    if adapter == "esc10":
        return sorted({_esc_fold_and_source(clip)[0]
                       for class_dir, _ in _esc_class_dirs(root) for clip in _files(class_dir, AUDIO_EXT)})
    if adapter == "imagefolder":
        return sorted(split_dir.name for split_dir in _imagefolder_splits(root))
    if adapter == "aeon":
        return sorted(AEON_SPLITS)
    return None


def _esc10(root: str | None, out_dir: Path, **options) -> pd.DataFrame:
    _check_options("esc10", options, ())
    return sheet_esc10(_need_root("esc10", root))


def _bonn(root: str | None, out_dir: Path, **options) -> pd.DataFrame:
    _check_options("bonn", options, ())
    return sheet_bonn(_need_root("bonn", root))


def _imagefolder(root: str | None, out_dir: Path, **options) -> pd.DataFrame:
    _check_options("imagefolder", options, ())
    return sheet_imagefolder(_need_root("imagefolder", root))


def _aeon(root: str | None, out_dir: Path, **options) -> pd.DataFrame:
    from deepself.datasets.aeon import sheet_aeon  # its module imports this one's helpers

    _check_options("aeon", options, ("dims",))
    return sheet_aeon(_need_root("aeon", root), Path(out_dir) / "aeon", dims=options.get("dims"))


def _digits(root: str | None, out_dir: Path, **options) -> pd.DataFrame:
    _check_options("digits", options, ())
    return sheet_digits(Path(out_dir) / "digits")


ADAPTERS: dict[str, Callable[..., pd.DataFrame]] = {
    "esc10": _esc10,
    "bonn": _bonn,
    "imagefolder": _imagefolder,
    "aeon": _aeon,
    "digits": _digits,
}
"""Adapter name to ``f(root, out_dir, **options) -> sheet``; ``out_dir`` is where converted files go."""


def _check_adapter(adapter: str) -> None:
    if adapter not in ADAPTERS:
        raise DeepselfError(f"config key data.adapter: unknown adapter {adapter!r}; known: {', '.join(ADAPTERS)}")


def _check_options(adapter: str, options: dict, accepted: tuple[str, ...]) -> None:
    unknown = sorted(set(options) - set(accepted))
    if unknown:
        raise DeepselfError(
            f"data.adapter {adapter}: unknown option {unknown[0]!r}; accepted: {', '.join(accepted) or 'none'}"
        )


def _need_root(adapter: str, root: str | None) -> str:
    if not root:
        what = "the data set name" if adapter == "aeon" else "the data folder"
        raise DeepselfError(f"config key data.root: adapter {adapter} needs {what}")
    return root


def _existing_dir(root: str | os.PathLike) -> Path:
    if root is None:
        raise DeepselfError("data root is not set")
    path = Path(root).expanduser()
    if not path.is_dir():
        raise DeepselfError(f"{root}: no such folder")
    return path


def _subdirs(folder: Path) -> list[Path]:
    """Sub-folders, sorted; hidden ones (.git, .ipynb_checkpoints) are not data."""
    return sorted(p for p in folder.iterdir() if p.is_dir() and not p.name.startswith("."))


def _files(folder: Path, extensions: tuple[str, ...]) -> list[Path]:
    """Files of ``folder`` with one of ``extensions`` in any case, sorted; hidden ones skipped."""
    return sorted(p for p in folder.iterdir()
                  if p.suffix.lower() in extensions and not p.name.startswith(".") and p.is_file())


def _absolute(path: Path) -> str:
    # abspath, not resolve: a data folder reached through a symlink keeps the name the user gave.
    return os.path.abspath(path)


def _esc_class_dirs(root: str | os.PathLike) -> list[tuple[Path, str]]:
    class_dirs = []
    for class_dir in _subdirs(_existing_dir(root)):
        match = _ESC_CLASS_DIR.match(class_dir.name)
        if not match:
            raise DeepselfError(
                f"{class_dir}: class folder name is not '<NNN> - <Class name>', e.g. '001 - Dog bark'"
            )
        class_dirs.append((class_dir, match["name"].strip()))
    return class_dirs


def _esc_fold_and_source(clip: Path) -> tuple[str, str]:
    match = _ESC_CLIP.match(clip.stem)
    if not match:
        raise DeepselfError(f"{clip}: clip name is not '<fold>-<freesound id>-<take>', e.g. '1-100032-A.ogg'")
    return match["fold"], match["source"]


def _imagefolder_splits(root: str | os.PathLike) -> list[Path]:
    return _subdirs(_existing_dir(root))


def _finish(rows: list[dict], origin: str | os.PathLike, what: str) -> pd.DataFrame:
    """Rows to a sheet sorted by id; the ids must be unique and there must be some."""
    if not rows:
        raise DeepselfError(f"{origin}: holds no {what}")
    sheet = pd.DataFrame(rows).astype(str)
    duplicated = sheet[sheet["id"].duplicated(keep=False)]
    if len(duplicated):
        first = duplicated[duplicated["id"] == duplicated["id"].iloc[0]]
        raise DeepselfError(
            f"{origin}: sample id {first['id'].iloc[0]!r} is given to more than one file: "
            f"{', '.join(first.iloc[:, 1])}"
        )
    return sheet.sort_values("id", kind="stable").reset_index(drop=True)
