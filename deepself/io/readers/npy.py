"""``.npy`` arrays: the header read and checked alone, the array read as ``(channels, time)``."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from deepself.errors import DeepselfError
from deepself.io.readers.checks import to_float32


def npy_shape(path: str | os.PathLike) -> tuple[int, ...]:
    """The shape a ``.npy`` file's header declares, reading the header only (about 0.1 ms a file).

    The header is checked against the file's size: a damaged header may claim any shape, and
    ``np.load`` would allocate it before noticing the data is not there.

    Raises
    ------
    DeepselfError
        If the header cannot be read or declares more data than the file holds.
    """
    try:
        with open(path, "rb") as fh:
            version = np.lib.format.read_magic(fh)
            read_header = (np.lib.format.read_array_header_1_0 if version == (1, 0)
                           else np.lib.format.read_array_header_2_0)
            shape, _, dtype = read_header(fh)
            needed = fh.tell() + int(np.prod(shape, dtype=np.float64)) * dtype.itemsize
        if needed > os.stat(path).st_size:
            raise ValueError(f"its header says shape {shape} of {dtype}, more than the file holds")
    except Exception as error:  # numpy raises ValueError, TokenError, SyntaxError, ... on a bad header
        raise DeepselfError(f"{path}: cannot be read as a .npy array: {error}") from None
    return tuple(shape)


def check_npy_layout(path: str | os.PathLike, shape: tuple[int, ...]) -> None:
    """Refuse a 2-D ``.npy`` array with more columns than rows.

    A 2-D array is ``(time, channels)``, like the text tables. One with more channels than
    samples is far more likely an array saved ``(channels, time)`` (2 channels of 800 samples
    stored as 800 channels of 2 samples), which a model would learn from without complaint.

    Raises
    ------
    DeepselfError
        Naming the file, its shape and the fix (save it transposed).
    """
    if len(shape) == 2 and shape[1] > shape[0]:
        raise DeepselfError(
            f"{path}: array of shape {tuple(shape)} would be {shape[0]} samples of {shape[1]} channels; a 2-D .npy "
            "is (time, channels), one row per time step like the text tables: if it holds (channels, time), save "
            "it transposed, np.save(path, x.T)"
        )


def read_npy(path: Path) -> np.ndarray:
    check_npy_layout(path, npy_shape(path))
    try:
        array = np.load(path, allow_pickle=False)
    except Exception as error:  # numpy raises ValueError, TokenError, SyntaxError, ... on a bad header
        raise DeepselfError(f"{path}: cannot be read as a .npy array: {error}") from None
    if not isinstance(array, np.ndarray):
        raise DeepselfError(f"{path}: holds no single array (use a .npy file, not .npz)")
    if not (np.issubdtype(array.dtype, np.integer) or np.issubdtype(array.dtype, np.floating)
            or array.dtype == np.bool_):
        raise DeepselfError(f"{path}: array of dtype {array.dtype} is not real numbers")
    if array.ndim == 1:
        array = array[None, :]
    elif array.ndim == 2:
        array = array.T  # stored (time, channels), like the text tables
    else:
        raise DeepselfError(
            f"{path}: array has {array.ndim} dimensions, shape {array.shape}; expected 1-D (time) "
            "or 2-D (time, channels)"
        )
    return to_float32(path, array)
