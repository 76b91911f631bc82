"""Text tables of a signal (``.txt``, ``.csv``, ``.tsv``): one row per time step, one column per channel.

The separator, the decimal mark and a header row are told from the first lines, or given; a
table that reads two ways is refused, never guessed. A bad cell is named by line and column.
"""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np

from deepself.errors import DeepselfError
from deepself.io.readers.checks import to_float32

# The config's names of separators (None: any run of whitespace) and decimal marks of text tables.
SEPARATORS = {"comma": ",", "semicolon": ";", "tab": "\t", "whitespace": None}
DECIMALS = {"point": ".", "comma": ","}
# Lines read to tell the separator and the decimal mark (every reading of them is tried).
_FORMAT_SAMPLE_LINES = 50
_DECIMAL_COMMA = re.compile(r"[+-]?\d*,\d+([eE][+-]?\d+)?")


def read_text(path: Path, separator: str, decimal: str, key: str) -> np.ndarray:
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
    return to_float32(path, table.T)


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
