"""Images by Pillow, as float32 ``(channels, height, width)`` in [0, 1]."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np

from deepself.errors import DeepselfError
from deepself.io.readers.checks import check_file

_GREY_MODES = ("1", "L", "LA", "La")
_HIGH_DEPTH_GREY_MODES = ("I", "I;16", "I;16B", "I;16L", "I;16N", "F")


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
    check_file(path)
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
