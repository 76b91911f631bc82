"""Read one raw input file into an array: audio, sensor/EEG text or .npy, or an image.

Signals come back as float32 ``(channels, time)``; images as float32 ``(channels, height, width)``
in [0, 1]. Every problem with a file raises :class:`~deepself.errors.DeepselfError` naming the file
and, where it applies, the line, column or sample that is wrong. One module per kind of file:
:mod:`~deepself.io.readers.audio`, :mod:`~deepself.io.readers.tables` (text tables),
:mod:`~deepself.io.readers.npy` and :mod:`~deepself.io.readers.image`; here, which one a file
needs (:func:`kind_of`) and the signal reader of them all (:func:`read_signal`).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from deepself.errors import DeepselfError
from deepself.io.readers.audio import read_audio
from deepself.io.readers.checks import check_file, check_finite
from deepself.io.readers.npy import read_npy
from deepself.io.readers.tables import read_text

AUDIO_EXT = (".wav", ".flac", ".ogg")
SENSOR_EXT = (".txt", ".csv", ".tsv", ".npy")
IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp")


def kind_of(path: str | os.PathLike) -> str:
    """Say which reader a file needs, from its extension (case-insensitive).

    Parameters
    ----------
    path : str or os.PathLike
        The file; it need not exist.

    Returns
    -------
    str
        ``"audio"``, ``"sensor"`` or ``"image"``.

    Raises
    ------
    DeepselfError
        If the extension is none of :data:`AUDIO_EXT`, :data:`SENSOR_EXT`, :data:`IMAGE_EXT`
        (for a directory: that it is one).
    """
    suffix = Path(path).suffix.lower()
    for kind, extensions in (("audio", AUDIO_EXT), ("sensor", SENSOR_EXT), ("image", IMAGE_EXT)):
        if suffix in extensions:
            return kind
    if Path(path).is_dir():
        raise DeepselfError(f"{path}: is a directory, not a file; list the file itself")
    accepted = ", ".join(AUDIO_EXT + SENSOR_EXT + IMAGE_EXT)
    raise DeepselfError(f"{path}: unknown file type {suffix!r}; accepted extensions: {accepted}")


def read_signal(path: str | os.PathLike, separator: str = "auto", decimal: str = "auto",
                key: str = "data.modalities.<name>") -> tuple[np.ndarray, float | None]:
    """Read an audio or sensor file as a float32 ``(channels, time)`` array.

    Parameters
    ----------
    path : str or os.PathLike
        An audio file (``.wav``, ``.flac``, ``.ogg``), a text table (``.txt``, ``.csv``,
        ``.tsv``: one row per time step, one column per channel, separator comma, tab, semicolon
        or whitespace, decimal point or comma, an optional header row) or a ``.npy`` array (1-D,
        or 2-D as ``(time, channels)`` like the text tables; a 2-D array with more columns than
        rows is refused, see :func:`~deepself.io.readers.npy.check_npy_layout`).
    separator : {"auto", "comma", "semicolon", "tab", "whitespace"}, default "auto"
        Column separator of a text table; "auto" tries each (see ``decimal``).
    decimal : {"auto", "point", "comma"}, default "auto"
        Decimal mark of a text table. With "auto" (for either) every reading of the first lines
        is tried: one that fits is used, and when two fit with different numbers (``0,0126``: one
        column of 0.0126, or two columns 0 and 126) the file is refused, never guessed.
    key : str
        The config key of the modality, named in the error that asks for ``separator`` and ``decimal``.

    Returns
    -------
    signal : numpy.ndarray
        float32, shape ``(channels, time)``, every value finite.
    sample_rate : float or None
        The rate stored in an audio file; None for text and ``.npy``, which store none.

    Raises
    ------
    DeepselfError
        If the file is missing, empty, cannot be decoded, is truncated, holds a non-numeric cell,
        rows of different lengths, NaN or Inf, or no samples, or is a text table that reads two
        ways; the message names the file and the position that is wrong.
    """
    path = Path(path)
    kind = kind_of(path)
    if kind == "image":
        raise DeepselfError(f"{path}: is an image, not a signal; read it with read_image")
    check_file(path)
    suffix = path.suffix.lower()
    if kind == "audio":
        signal, sample_rate = read_audio(path)
        check_finite(path, signal)
    elif suffix == ".npy":
        signal, sample_rate = read_npy(path), None
        check_finite(path, signal)
    else:
        signal, sample_rate = read_text(path, separator, decimal, key), None
    if signal.shape[1] == 0:
        raise DeepselfError(f"{path}: holds no samples")
    return signal, sample_rate
