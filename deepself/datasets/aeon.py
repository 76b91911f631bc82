"""aeon's time-series classification data sets as a sample sheet: ``.ts`` files parsed, ``.npy`` files written.

The ``.ts`` files ship in the aeon wheel; they are found and parsed without importing aeon.
"""

from __future__ import annotations

import importlib.util
import os
import re
from pathlib import Path

import numpy as np
import pandas as pd

from deepself.datasets.adapters import AEON_SPLITS, _absolute, _finish
from deepself.errors import DeepselfError
from deepself.io.atomic import atomic_path

_RESERVED_COLUMNS = ("id", "label", "fold", "group")


def sheet_aeon(
    dataset: str,
    out_dir: str | os.PathLike,
    dims: dict[str, list[int]] | None = None,
) -> pd.DataFrame:
    """Write a time-series classification data set shipped in the ``aeon`` wheel as ``.npy`` files.

    The data set's ``<dataset>_TRAIN.ts`` and ``<dataset>_TEST.ts`` are found and parsed without
    importing aeon (its import is slow and compiles numba code).

    Parameters
    ----------
    dataset : str
        Name of a folder of ``aeon/datasets/data``, e.g. ``"BasicMotions"`` (accelerometer x, y, z
        in dimensions 0-2, gyroscope in 3-5; 4 activities; 40 + 40 cases of 100 points at 10 Hz).
    out_dir : str or os.PathLike
        Where ``<modality>/<id>.npy`` files are written, each float32 ``(time, channels)``.
    dims : dict of str to list of int, optional
        Modality name to the dimensions it takes, e.g. ``{"accel": [0, 1, 2], "gyro": [3, 4, 5]}``.
        None gives one modality ``path`` with every dimension.

    Returns
    -------
    pandas.DataFrame
        Columns ``id`` (``"<dataset>_<split>_<index:03d>"``), one path column per modality,
        ``label`` (as in the file) and ``fold`` (the official split, ``"train"`` or ``"test"``),
        sorted by ``id``.

    Raises
    ------
    DeepselfError
        If aeon is not installed, the data set is not in it, a ``.ts`` file is not an
        equal-length numeric labelled data set (the message names the file and line), or
        ``dims`` names a dimension the data set does not have.
    """
    splits = {split: _parse_ts(path) for split, path in _aeon_files(dataset).items()}
    n_dims = {split: cases[0][0].shape[0] for split, cases in splits.items()}
    n_times = {split: cases[0][0].shape[1] for split, cases in splits.items()}
    if n_dims["train"] != n_dims["test"] or n_times["train"] != n_times["test"]:
        raise DeepselfError(
            f"aeon data set {dataset}: train cases have {n_dims['train']} dimensions of "
            f"{n_times['train']} points, test cases {n_dims['test']} of {n_times['test']}"
        )
    dims = _check_dims(dataset, dims, n_dims["train"])

    out_dir = Path(out_dir)
    rows = []
    for split, cases in splits.items():
        for index, (series, label) in enumerate(cases):
            sample_id = f"{dataset}_{split}_{index:03d}"
            row = {"id": sample_id}
            for modality, indices in dims.items():
                target = out_dir / modality / f"{sample_id}.npy"
                _save_npy(target, series[indices].T)
                row[modality] = _absolute(target)
            rows.append({**row, "label": label, "fold": split})
    return _finish(rows, dataset, "cases")


def _save_npy(path: Path, array: np.ndarray) -> None:
    with atomic_path(path) as tmp:
        # A file object, so that np.save does not append ".npy" to the temporary name.
        with open(tmp, "wb") as handle:
            np.save(handle, np.ascontiguousarray(array, dtype=np.float32))


def _aeon_files(dataset: str) -> dict[str, Path]:
    if not dataset or Path(dataset).name != dataset or dataset.startswith("."):
        raise DeepselfError(f"config key data.root: {dataset!r} is not an aeon data set name")
    # find_spec locates a top-level package without running its __init__ (which imports numba).
    spec = importlib.util.find_spec("aeon")
    if spec is None or not spec.submodule_search_locations:
        raise DeepselfError(f"aeon data set {dataset}: the aeon package is not installed (pip install aeon)")
    data_dir = Path(list(spec.submodule_search_locations)[0]) / "datasets" / "data"
    files = {split: data_dir / dataset / f"{dataset}_{split.upper()}.ts" for split in AEON_SPLITS}
    if not all(path.is_file() for path in files.values()):
        available = sorted(p.name for p in data_dir.iterdir()
                           if (p / f"{p.name}_TRAIN.ts").is_file() and (p / f"{p.name}_TEST.ts").is_file())
        raise DeepselfError(
            f"aeon data set {dataset}: not in {data_dir} (no {dataset}_TRAIN.ts and _TEST.ts); "
            f"available: {', '.join(available)}"
        )
    return files


def _parse_ts(path: Path) -> list[tuple[np.ndarray, str]]:
    """Parse an equal-length, numeric, labelled ``.ts`` file into ``(dims, time)`` arrays and labels.

    The format (sktime/aeon): ``#`` comments, ``@key value`` header lines, ``@data``, then one
    case a line, dimensions separated by ``:``, values by ``,``, the class label last.
    """
    header: dict[str, str] = {}
    cases: list[tuple[np.ndarray, str]] = []
    in_data = False
    for number, raw in enumerate(path.read_text(encoding="utf-8", errors="replace").splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if not in_data:
            if not line.startswith("@"):
                raise DeepselfError(f"{path}: line {number}: expected a '@' header line before @data")
            key, _, value = line[1:].partition(" ")
            key = key.lower()
            if key == "data":
                in_data = True
                _check_ts_header(path, number, header)
            else:
                header[key] = value.strip()
            continue
        cases.append(_parse_ts_case(path, number, line, header, cases))
    if not cases:
        raise DeepselfError(f"{path}: holds no cases (no lines after @data)")
    return cases


def _check_ts_header(path: Path, number: int, header: dict[str, str]) -> None:
    if header.get("timestamps", "false").lower() == "true":
        raise DeepselfError(f"{path}: line {number}: time-stamped series are not supported")
    class_label = header.get("classlabel", "").split()
    if not class_label or class_label[0].lower() != "true":
        raise DeepselfError(f"{path}: line {number}: the data set has no class labels (@classLabel true ...)")


def _parse_ts_case(
    path: Path, number: int, line: str, header: dict[str, str], cases: list
) -> tuple[np.ndarray, str]:
    *dimensions, label = line.split(":")
    label = label.strip()
    where = f"{path}: line {number}"
    if not dimensions:
        raise DeepselfError(f"{where}: no ':' between the series and the class label")
    classes = header["classlabel"].split()[1:]
    if classes and label not in classes:
        raise DeepselfError(f"{where}: class label {label!r} is not one of @classLabel ({', '.join(classes)})")
    series = []
    for dim, text in enumerate(dimensions):
        if "(" in text:
            raise DeepselfError(f"{where}, dimension {dim}: time-stamped values are not supported")
        values = text.split(",")
        try:
            series.append(np.array(values, dtype=np.float64))
        except ValueError:
            for position, value in enumerate(values):
                if value.strip() == "?":
                    raise DeepselfError(
                        f"{where}, dimension {dim}, value {position}: missing value '?' is not supported"
                    ) from None
                try:
                    float(value)
                except ValueError:
                    raise DeepselfError(
                        f"{where}, dimension {dim}, value {position}: {value.strip()!r} is not a number"
                    ) from None
            raise DeepselfError(f"{where}, dimension {dim}: cannot be read as numbers") from None
        if not np.isfinite(series[-1]).all():
            position = int(np.flatnonzero(~np.isfinite(series[-1]))[0])
            raise DeepselfError(
                f"{where}, dimension {dim}, value {position}: {values[position].strip()!r} is not finite"
            )
    lengths = {len(s) for s in series}
    if len(lengths) > 1:
        raise DeepselfError(
            f"{where}: dimensions have different lengths {sorted(lengths)}; only equal-length series "
            "are supported"
        )
    if cases and (len(series), series[0].size) != cases[0][0].shape:
        n_dims, n_times = cases[0][0].shape
        raise DeepselfError(
            f"{where}: {len(series)} dimensions of {series[0].size} points, but the first case has "
            f"{n_dims} of {n_times}; only equal-length series are supported"
        )
    return np.stack(series), label


def _check_dims(dataset: str, dims: dict[str, list[int]] | None, n_dims: int) -> dict[str, list[int]]:
    if dims is None:
        return {"path": list(range(n_dims))}
    if not dims:
        raise DeepselfError(f"config key data.dims: empty for aeon data set {dataset}")
    for modality, indices in dims.items():
        if modality in _RESERVED_COLUMNS or not re.fullmatch(r"[A-Za-z0-9_]+", str(modality)):
            raise DeepselfError(
                f"config key data.dims: modality name {modality!r} must be letters, digits and '_' and "
                f"not one of {', '.join(_RESERVED_COLUMNS)}"
            )
        if not indices:
            raise DeepselfError(f"config key data.dims.{modality}: lists no dimensions")
        for index in indices:
            if isinstance(index, bool) or not isinstance(index, (int, np.integer)) or not 0 <= index < n_dims:
                raise DeepselfError(
                    f"config key data.dims.{modality}: dimension {index!r} is not in 0..{n_dims - 1} "
                    f"(aeon data set {dataset} has {n_dims})"
                )
    return {modality: list(indices) for modality, indices in dims.items()}
