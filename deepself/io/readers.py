"""Read one raw input file into an array: audio, sensor/EEG text or .npy, or an image.

Signals come back as float32 ``(channels, time)``; images as float32 ``(channels, height, width)``
in [0, 1]. Every problem with a file raises :class:`~deepself.errors.DeepselfError` naming the file
and, where it applies, the line, column or sample that is wrong.
"""

from __future__ import annotations

import io
import os
import re
import warnings
from pathlib import Path

import numpy as np

from deepself.errors import DeepselfError

AUDIO_EXT = (".wav", ".flac", ".ogg")
SENSOR_EXT = (".txt", ".csv", ".tsv", ".npy")
IMAGE_EXT = (".png", ".jpg", ".jpeg", ".bmp")

# The config's names of separators (None: any run of whitespace) and decimal marks of text tables.
SEPARATORS = {"comma": ",", "semicolon": ";", "tab": "\t", "whitespace": None}
DECIMALS = {"point": ".", "comma": ","}
# Lines read to tell the separator and the decimal mark (every reading of them is tried).
_FORMAT_SAMPLE_LINES = 50
_DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+([eE][+-]?\d+)?")
# libsndfile opens a WAV whose data chunk runs past the end of the file and returns only the
# frames that are there; the only trace is this line of its log.
_WAV_DATA_TOO_LONG = re.compile(r"^\s*data\s*:\s*(\d+)\s*\(should be (\d+)\)", re.MULTILINE)
_WAV_UNKNOWN_LENGTH = 0xFFFFFFFF  # streaming writers put this in the header; not a truncation
_GREY_MODES = ("1", "L", "LA", "La")
_HIGH_DEPTH_GREY_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


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
        rows is refused, see :func:`check_npy_layout`).
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
    _check_file(path)
    suffix = path.suffix.lower()
    if kind == "audio":
        signal, sample_rate = _read_audio(path)
        _check_finite(path, signal)
    elif suffix == ".npy":
        signal, sample_rate = _read_npy(path), None
        _check_finite(path, signal)
    else:
        signal, sample_rate = _read_text(path, separator, decimal, key), None
    if signal.shape[1] == 0:
        raise DeepselfError(f"{path}: holds no samples")
    return signal, sample_rate


def read_image(
    path: str | os.PathLike,
    mode: str | None = None,
    size: tuple[int, int] | None = None,
) -> np.ndarray:
    """Read an image as a float32 ``(channels, height, width)`` array in [0, 1].

    Parameters
    ----------
    path : str or os.PathLike
        Any image Pillow can decode (PNG, JPEG, BMP, ...). The EXIF orientation is applied, so a
        photo comes out the way it is displayed.
    mode : {"L", "RGB", None}
        ``"L"``: one grey channel (luma, ITU-R 601-2); ``"RGB"``: three channels. None keeps a
        grey image grey and turns anything else (palette, RGBA, CMYK, ...) into RGB; an alpha
        channel is dropped.
    size : tuple of int, optional
        ``(height, width)`` to resize to, bilinear; None keeps the stored size.

    Returns
    -------
    numpy.ndarray
        float32, shape ``(1 or 3, height, width)``, values in [0, 1].

    Raises
    ------
    DeepselfError
        If the file is missing, empty or not an image Pillow can decode, or if ``mode`` or
        ``size`` is not one of the accepted values.
    """
    from PIL import Image, ImageOps

    path = Path(path)
    if mode not in ("L", "RGB", None):
        raise DeepselfError(f"{path}: image mode must be 'L', 'RGB' or None, got {mode!r}")
    if size is not None and not (
        isinstance(size, (tuple, list))
        and len(size) == 2
        and all(isinstance(n, (int, np.integer)) and not isinstance(n, bool) and n > 0 for n in size)
    ):
        raise DeepselfError(f"{path}: image size must be (height, width), positive integers, got {size!r}")
    _check_file(path)
    try:
        with Image.open(path) as opened:
            image = ImageOps.exif_transpose(opened)
            image.load()
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError) as error:
        # Pillow reports unknown formats and truncated data as OSError subclasses, broken
        # headers of some formats as ValueError or SyntaxError.
        raise DeepselfError(f"{path}: cannot be decoded as an image: {error}") from None

    grey = image.mode in _GREY_MODES + _HIGH_DEPTH_GREY_MODES
    target = mode or ("L" if grey else "RGB")
    if image.mode in _HIGH_DEPTH_GREY_MODES:
        # 16-bit and float grey would be clipped, not scaled, by Pillow's convert("L"); scale
        # them here and resize in float mode.
        image = Image.fromarray(_high_depth_grey(image))  # float32 -> mode "F"
    elif image.mode == "P":
        # A palette with transparency converts cleanly only through RGBA (else Pillow warns).
        image = image.convert("RGBA").convert(target)
    elif image.mode != target:
        image = image.convert(target)
    if size is not None:
        image = image.resize((int(size[1]), int(size[0])), Image.Resampling.BILINEAR)

    pixels = np.asarray(image, dtype=np.float32)
    if image.mode != "F":
        pixels = pixels / np.float32(255.0)
    if pixels.ndim == 2:
        pixels = pixels[None]
    else:
        pixels = pixels.transpose(2, 0, 1)
    if target == "RGB" and pixels.shape[0] == 1:
        pixels = np.repeat(pixels, 3, axis=0)
    return np.ascontiguousarray(np.clip(pixels, 0.0, 1.0), dtype=np.float32)


def _high_depth_grey(image) -> np.ndarray:
    """Scale a 16/32-bit integer or float grey image to float32 in [0, 1]."""
    values = np.asarray(image, dtype=np.float64)
    if image.mode == "F":
        return np.clip(values, 0.0, 1.0).astype(np.float32)
    # Pillow opens 16-bit grey PNGs as "I;16" or "I"; the stored range is 16 bits either way.
    return np.clip(values / 65535.0, 0.0, 1.0).astype(np.float32)


def _check_file(path: Path) -> None:
    if not path.exists():
        raise DeepselfError(f"{path}: no such file")
    if path.is_dir():
        raise DeepselfError(f"{path}: is a directory, not a file; list the file itself")
    if not path.is_file():
        raise DeepselfError(f"{path}: is not a regular file")
    if path.stat().st_size == 0:
        raise DeepselfError(f"{path}: empty file")


def _read_audio(path: Path) -> tuple[np.ndarray, float]:
    import soundfile

    try:
        with soundfile.SoundFile(path) as audio:
            expected = audio.frames
            frames = audio.read(always_2d=True, dtype="float32")
            sample_rate = float(audio.samplerate)
            log = audio.extra_info
    except (RuntimeError, TypeError, ValueError) as error:
        # soundfile raises LibsndfileError (a RuntimeError) for undecodable data; TypeError and
        # ValueError come from formats it recognises but cannot map.
        raise DeepselfError(f"{path}: cannot be decoded as audio: {error}") from None
    if len(frames) < expected:
        raise DeepselfError(
            f"{path}: cannot be decoded as audio: truncated, {len(frames)} of {expected} frames read"
        )
    too_long = _WAV_DATA_TOO_LONG.search(log)
    if too_long and int(too_long.group(1)) != _WAV_UNKNOWN_LENGTH:
        claimed, present = int(too_long.group(1)), int(too_long.group(2))
        if claimed > present:
            raise DeepselfError(
                f"{path}: cannot be decoded as audio: truncated, the header announces {claimed} "
                f"bytes of samples but the file holds {present}"
            )
    return np.ascontiguousarray(frames.T), sample_rate


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


def _read_npy(path: Path) -> np.ndarray:
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
    return _to_float32(path, array)


def _to_float32(path: Path, array: np.ndarray) -> np.ndarray:
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


def _check_finite(path: Path, signal: np.ndarray) -> None:
    bad = ~np.isfinite(signal)
    if bad.any():
        channel, sample = np.argwhere(bad)[0]
        raise DeepselfError(
            f"{path}: channel {channel}, sample {sample}: {signal[channel, sample]} is not a "
            "finite number"
        )


def _read_text(path: Path, separator: str, decimal: str, key: str) -> np.ndarray:
    import pandas as pd

    # One line end for pandas and for the line numbers of errors (CRLF, and old Mac CR).
    text = path.read_bytes().decode("utf-8-sig", errors="replace").replace("\r\n", "\n").replace("\r", "\n")
    leading = _leading_lines(text, _FORMAT_SAMPLE_LINES)
    if not leading:
        raise DeepselfError(f"{path}: holds no samples (only blank lines)")
    sep, dec, header = _text_format(path, [line for line, _ in leading], separator, decimal, key)
    body = text[leading[0][1]:] if header else text
    if not body.strip():
        raise DeepselfError(f"{path}: holds no samples (only a header row)")
    try:
        table = pd.read_csv(
            io.StringIO(body), sep=sep or r"\s+", decimal=dec, header=None, dtype=np.float64, engine="c"
        ).to_numpy()
    except ValueError as error:
        table, failure = None, error
    else:
        failure = None if np.isfinite(table).all() else "a cell is empty, NaN or Inf"
    if failure is not None:
        # pandas reports neither the line nor the column (and reads short rows as NaN): walk the
        # lines to say exactly what is wrong where.
        _diagnose_text(path, text, sep, dec, header)
        raise DeepselfError(f"{path}: cannot be read as a table of numbers: {failure}")
    return _to_float32(path, table.T)


def _text_format(path: Path, lines: list[str], separator: str, decimal: str,
                 key: str) -> tuple[str | None, str, bool]:
    """``(separator, decimal mark, header row?)`` of a text table, from its first non-blank ``lines``.

    Every allowed pair is tried on the lines; pairs that read them as the same numbers are one
    reading. One reading: it is used. Several: the file is refused, naming ``key``'s settings.
    None (no pair reads the lines): the stated or most frequent separator, so that the full
    parse fails and names the bad cell.
    """
    separators = list(SEPARATORS.values()) if separator == "auto" else [SEPARATORS[separator]]
    decimals = list(DECIMALS.values()) if decimal == "auto" else [DECIMALS[decimal]]
    readings: dict[tuple, tuple[str | None, str, bool]] = {}
    for dec in decimals:
        for sep in separators:
            if sep == dec:
                continue
            reading = _read_lines(lines, sep, dec)
            if reading is not None and reading not in readings:
                readings[reading] = (sep, dec, reading[0])
    if len(readings) > 1:
        (first, a), (second, b) = list(readings.items())[:2]
        line = lines[1] if first[0] and len(lines) > 1 else lines[0]

        def how(reading, form):
            sep, dec, _ = form
            width = len(reading[1][0])
            if width == 1:
                return f"1 column (decimal {_name(DECIMALS, dec)})"
            return f"{width} columns ({_name(SEPARATORS, sep)} separator, decimal {_name(DECIMALS, dec)})"

        raise DeepselfError(f"{path}: line {line!r} reads as {how(first, a)} or as {how(second, b)}; set "
                            f"{key}.separator and {key}.decimal to say which")
    if readings:
        return next(iter(readings.values()))
    if separator == "auto":
        found = {sep: sum(sep in line for line in lines) for sep in (",", "\t", ";")}
        best = max(found, key=found.get)
        sep = best if found[best] else None
    else:
        sep = SEPARATORS[separator]
    dec = DECIMALS[decimal] if decimal != "auto" else "."
    return sep, dec, _is_header(_split(lines[0], sep))


def _is_header(cells: list[str]) -> bool:
    """A row of column names: no cell reads as a number with either decimal mark."""
    return all(_number(cell, ".") is None and _number(cell, ",") is None for cell in cells)


def _name(names: dict, value) -> str:
    return next(name for name, v in names.items() if v == value)


def _read_lines(lines: list[str], sep: str | None, dec: str) -> tuple | None:
    """``(header?, rows of numbers)`` of the lines with this separator and decimal mark, or None if they do not read."""
    rows = [_split(line, sep) for line in lines]
    header = _is_header(rows[0])
    if header and dec == "," and sep != "," and any("," in cell for cell in rows[0]):
        return None  # a column name with a comma in it: the comma is the separator
    width = len(rows[0])
    numbers = []
    for cells in rows[1:] if header else rows:
        values = tuple(_number(cell, dec) for cell in cells)
        if len(values) != width or None in values:
            return None
        numbers.append(values)
    if not numbers:
        return None
    return header, tuple(numbers)


def _number(cell: str, dec: str) -> float | None:
    """The cell's number with decimal mark ``dec`` (finite or not), or None if it is not one."""
    cell = cell.strip()
    if dec == ",":
        if "." in cell or ("," in cell and not _DECIMAL_COMMA.fullmatch(cell)):
            return None  # "3," or "1,2,3" is no number with a decimal comma
        cell = cell.replace(",", ".")
    try:
        return float(cell)
    except ValueError:
        return None


def _leading_lines(text: str, count: int) -> list[tuple[str, int]]:
    """The first ``count`` non-blank lines, each with the offset just past its end."""
    lines: list[tuple[str, int]] = []
    start = 0
    while len(lines) < count and start < len(text):
        end = text.find("\n", start)
        end = len(text) if end < 0 else end + 1
        if text[start:end].strip():
            lines.append((text[start:end].rstrip("\n"), end))
        start = end
    return lines


def _split(line: str, separator: str | None) -> list[str]:
    return line.split(separator) if separator else line.split()


def _diagnose_text(path: Path, text: str, separator: str | None, decimal: str, header: bool) -> None:
    """Raise for the first bad line or cell; slow, so only run after the fast parser failed."""
    width = None
    numbered = [(number, line) for number, line in enumerate(text.split("\n"), start=1) if line.strip()]
    for number, line in numbered[1:] if header else numbered:
        cells = _split(line, separator)
        if width is None:
            width = len(cells)
        elif len(cells) != width:
            raise DeepselfError(
                f"{path}: line {number}: {len(cells)} columns, but the rows above have {width}"
            )
        for column, cell in enumerate(cells, start=1):
            if not cell.strip():
                raise DeepselfError(f"{path}: line {number}, column {column}: empty cell")
            value = _number(cell, decimal)
            if value is None:
                raise DeepselfError(
                    f"{path}: line {number}, column {column}: {cell.strip()!r} is not a number"
                )
            if not np.isfinite(value):
                raise DeepselfError(
                    f"{path}: line {number}, column {column}: {cell.strip()!r} is not a finite number"
                )
