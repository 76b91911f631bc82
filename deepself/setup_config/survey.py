"""What a sample sheet and its files' headers say: the facts ``deepself init`` chooses from.

The sheet is read by the project's own reader (:func:`deepself.io.sheet.read_user_sheet`), each
file's kind by :func:`deepself.io.readers.kind_of`, and only headers are read: an audio file's
frames, rate and channels (``soundfile.info``), a ``.npy`` array's shape, an image's size and
colour mode (Pillow opens the header only). Text tables carry no header, so a seeded sample of
at most :data:`TEXT_FILES_READ` of them is read whole.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from deepself.errors import DeepselfError
from deepself.io import readers
from deepself.io.folds import fold_name
from deepself.io.readers.npy import check_npy_layout, npy_shape
from deepself.io.sheet import META_COLUMNS, read_user_sheet

TEXT_FILES_READ = 50  # text tables are read whole to learn their length: a sample of them
# Names of the held-out part of an official two-way split (the other fold is named train)
TRAIN_NAMES = ("train", "training")


@dataclass
class ModalitySurvey:
    """One path column of the sheet: its files' kind and what their headers say."""

    name: str
    column: str
    kind: str  # audio, sensor or image
    lengths: np.ndarray = field(default_factory=lambda: np.zeros(0))  # samples, of the files measured
    rates: Counter = field(default_factory=Counter)  # audio: Hz -> files
    channels: Counter = field(default_factory=Counter)
    sizes: Counter = field(default_factory=Counter)  # images: (height, width) -> files
    modes: Counter = field(default_factory=Counter)  # images: Pillow mode -> files
    measured: int = 0  # files whose header was read (all, but for text tables)

    @property
    def rate(self) -> float | None:
        """The files' most common sample rate (audio), None for sensor files and images."""
        return float(self.rates.most_common(1)[0][0]) if self.rates else None

    @property
    def median_length(self) -> int:
        return int(np.median(self.lengths)) if len(self.lengths) else 0


@dataclass
class Survey:
    """The sheet: samples, classes, folds or groups, and one :class:`ModalitySurvey` per path column."""

    sheet: str
    n: int
    classes: dict[str, int]
    modalities: list[ModalitySurvey]
    folds: dict[str, int] | None = None  # the fold column's folds -> samples, when every sample has one
    test_fold: str | None = None  # the held-out fold of an official train/test split
    groups: int | None = None  # distinct groups, when every sample has one
    fold_gaps: bool = False  # a fold column with empty cells (ignored)

    @property
    def kinds(self) -> set[str]:
        return {m.kind for m in self.modalities}


def survey_sheet(sheet_path: str) -> Survey:
    """Read the sheet and its files' headers.

    Raises
    ------
    DeepselfError
        Naming the sheet and the column or sample: no label column, no column of file paths, an
        empty label or path, a missing file, a column mixing kinds of files, a header that cannot
        be read.
    """
    sheet = read_user_sheet(sheet_path)
    if "label" not in sheet.columns:
        raise DeepselfError(f"{sheet_path}: the sheet has no label column (columns: {', '.join(sheet.columns)}); "
                            "add one with each sample's class")
    sheet["label"] = sheet["label"].str.strip()
    if "id" not in sheet.columns or (sheet["id"].str.strip() == "").all():
        sheet["id"] = [f"row {i + 2}" for i in sheet.index]
    empty = sheet["id"][sheet["label"] == ""]
    if len(empty):
        raise DeepselfError(f"{sheet_path}: sample {empty.iloc[0]!r} has no label; give every sample its class")
    columns = _path_columns(sheet, sheet_path)
    base = Path(sheet_path).resolve().parent
    modalities = [_survey_column(sheet, column, base, sheet_path, len(columns)) for column in columns]
    survey = Survey(sheet=str(sheet_path), n=len(sheet), classes=dict(sorted(Counter(sheet["label"]).items())),
                    modalities=modalities)
    survey.fold_gaps = "fold" in sheet.columns and (sheet["fold"].str.strip() == "").any()
    if "fold" in sheet.columns and not survey.fold_gaps:
        survey.folds = dict(sorted(Counter(sheet["fold"].map(fold_name)).items()))
        names = {f.casefold(): f for f in survey.folds}
        train = [names[t] for t in TRAIN_NAMES if t in names]
        if len(survey.folds) == 2 and train:
            survey.test_fold = next(f for f in survey.folds if f != train[0])
    if "group" in sheet.columns and (sheet["group"].str.strip() != "").all():
        survey.groups = sheet["group"].str.strip().nunique()
    return survey


def _path_columns(sheet, sheet_path: str) -> list[str]:
    """The columns most of whose cells name a file of a kind deepself reads (``path`` first).

    Each of their cells is checked afterwards (:func:`_survey_column`).
    """
    known = readers.AUDIO_EXT + readers.SENSOR_EXT + readers.IMAGE_EXT
    columns = [c for c in sheet.columns if c not in META_COLUMNS and len(sheet[c])
               and sheet[c].str.strip().str.lower().str.endswith(known).mean() > 0.5]
    if not columns:
        raise DeepselfError(f"{sheet_path}: no column lists files (columns: {', '.join(sheet.columns)}); add a path "
                            f"column with each sample's file ({', '.join(known)})")
    return sorted(columns, key=lambda c: c != "path")


def _survey_column(sheet, column: str, base: Path, sheet_path: str, n_columns: int) -> ModalitySurvey:
    paths = []
    for sid, value in zip(sheet["id"], sheet[column].str.strip()):
        if not value:
            raise DeepselfError(f"{sheet_path}: sample {sid!r} has no file in column {column!r}")
        path = Path(value).expanduser()
        path = path if path.is_absolute() else base / path
        if not path.is_file():
            raise DeepselfError(f"{sheet_path}: sample {sid!r}: file {str(path)!r} (column {column!r}) does not exist; "
                                "fix the path (a relative path is relative to the sheet's folder)")
        try:
            readers.kind_of(path)
        except DeepselfError as err:
            raise DeepselfError(f"{sheet_path}: sample {sid!r} (column {column!r}): {err}") from None
        paths.append((sid, path))
    kinds = Counter(readers.kind_of(p) for _, p in paths)
    if len(kinds) > 1:
        (kind, _), (other, _) = kinds.most_common(2)
        sid, path = next((s, p) for s, p in paths if readers.kind_of(p) == other)
        raise DeepselfError(f"{sheet_path}: column {column!r} mixes {kind} files and {other} files (sample {sid!r}: "
                            f"{path.name}); put each kind of file in a column of its own")
    name = "main" if column == "path" or n_columns == 1 else _name(column)
    found = ModalitySurvey(name=name, column=column, kind=next(iter(kinds)))
    {"audio": _audio, "sensor": _sensor, "image": _image}[found.kind](found, paths)
    return found


def _name(column: str) -> str:
    """A config name (letters, digits, ``_ . -``) for a column."""
    name = "".join(c if c.isalnum() or c in "_.-" else "_" for c in column.strip())
    return name if name[:1].isalnum() else f"m{name}"


def _audio(found: ModalitySurvey, paths) -> None:
    import soundfile

    lengths = []
    for sid, path in paths:
        try:
            info = soundfile.info(str(path))
        except (RuntimeError, TypeError, ValueError, OSError) as err:
            raise DeepselfError(f"{path}: sample {sid!r}: cannot be read as audio ({err}); replace or remove "
                                "it") from None
        lengths.append(info.frames)
        found.rates[info.samplerate] += 1
        found.channels[info.channels] += 1
    found.lengths, found.measured = np.array(lengths), len(paths)


def _sensor(found: ModalitySurvey, paths) -> None:
    npy = [(s, p) for s, p in paths if p.suffix.lower() == ".npy"]
    text = [(s, p) for s, p in paths if p.suffix.lower() != ".npy"]
    if len(text) > TEXT_FILES_READ:
        text = random.Random(0).sample(text, TEXT_FILES_READ)
    lengths = []
    for _, path in npy:
        shape = npy_shape(path)
        check_npy_layout(path, shape)
        lengths.append(shape[0])
        found.channels[1 if len(shape) == 1 else shape[1]] += 1
    for _, path in text:
        signal, _ = readers.read_signal(path, key=f"the sheet's column {found.column!r}")
        lengths.append(signal.shape[1])
        found.channels[signal.shape[0]] += 1
    found.lengths, found.measured = np.array(lengths), len(lengths)


def _image(found: ModalitySurvey, paths) -> None:
    from PIL import Image, UnidentifiedImageError

    for sid, path in paths:
        try:
            with Image.open(path) as image:
                width, height = image.size
                found.modes[image.mode] += 1
        except (OSError, UnidentifiedImageError, ValueError) as err:
            raise DeepselfError(f"{path}: sample {sid!r}: cannot be read as an image ({err}); replace or remove "
                                "it") from None
        found.sizes[(height, width)] += 1
    found.measured = len(paths)
