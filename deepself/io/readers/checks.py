"""Checks every reader makes: the file is a non-empty regular file; the values are finite float32."""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from deepself.errors import DeepselfError


def check_file(path: Path) -> None:
    if not path.exists():
        raise DeepselfError(f"{path}: no such file")
    if path.is_dir():
        raise DeepselfError(f"{path}: is a directory, not a file; list the file itself")
    if not path.is_file():
        raise DeepselfError(f"{path}: is not a regular file")
    if path.stat().st_size == 0:
        raise DeepselfError(f"{path}: empty file")


def to_float32(path: Path, array: np.ndarray) -> np.ndarray:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", RuntimeWarning)  # overflow is reported below
        converted = np.ascontiguousarray(array, dtype=np.float32)
    if np.isfinite(array).all() and not np.isfinite(converted).all():
        channel, sample = np.argwhere(~np.isfinite(converted))[0]
        raise DeepselfError(
            f"{path}: channel {channel}, sample {sample}: {array[channel, sample]} is beyond the "
            "float32 range"
        )
    return converted


def check_finite(path: Path, signal: np.ndarray) -> None:
    bad = ~np.isfinite(signal)
    if bad.any():
        channel, sample = np.argwhere(bad)[0]
        raise DeepselfError(
            f"{path}: channel {channel}, sample {sample}: {signal[channel, sample]} is not a "
            "finite number"
        )
