"""FER-2013, from Kaggle's ``fer2013.csv``: ``deepself data download fer2013 --root DIR --from FILE``.

Needs a Kaggle login, so it is not downloaded: :func:`install_fer2013` says where to get
``fer2013.csv`` and converts it to ``ROOT/{train,dev}/<emotion>/*.jpg``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
from pathlib import Path
from typing import IO

from deepself.datasets.download import _move_in, _staging
from deepself.errors import DeepselfError

FER2013_PAGE = ("https://www.kaggle.com/c/challenges-in-representation-learning-facial-expression-"
                "recognition-challenge/data")
# FER-2013's emotion codes; Kaggle's Usage column to the imagefolder split (PrivateTest stays out).
FER2013_EMOTIONS = ("angry", "disgust", "fear", "happy", "sad", "surprise", "neutral")
FER2013_SPLITS = {"Training": "train", "PublicTest": "dev"}


def install_fer2013(root: str | os.PathLike, source: str | os.PathLike | None = None, *,
                    force: bool = False) -> int:
    """Convert Kaggle's ``fer2013.csv`` to ``root/{train,dev}/<emotion>/<Usage>_<row>.jpg``.

    FER-2013 is only on Kaggle behind a login, so it is never downloaded here. ``Training`` rows go
    to ``train`` (28,709), ``PublicTest`` rows to ``dev`` (3,589); ``PrivateTest`` rows, the
    challenge's held-out test, are left out. ``<row>`` is the row's 0-based index in the CSV.

    Parameters
    ----------
    root : str or os.PathLike
        The folder to fill (created if missing).
    source : str or os.PathLike, optional
        ``fer2013.csv`` (columns ``emotion``, ``pixels``, ``Usage``: 48 x 48 grey levels, space
        separated) or Kaggle's ``fer2013.tar.gz`` holding it. None raises the manual steps.
    force : bool
        Convert even when ``root`` already holds every image.

    Returns
    -------
    int
        The number of images written; 0 when they were already present.

    Raises
    ------
    DeepselfError
        Without ``source`` (the message gives the steps), or if a row is malformed (nothing is then
        written to ``root``).

    References
    ----------
    I. J. Goodfellow et al., "Challenges in representation learning: a report on three machine
    learning contests", ICONIP 2013 (the ICML 2013 workshop challenge).
    """
    if source is None:
        raise DeepselfError(
            "fer2013 needs a Kaggle login, so deepself cannot download it. Sign in, accept the rules and "
            f"download the data of {FER2013_PAGE} (fer2013.tar.gz, holding fer2013/fer2013.csv with the columns "
            f"emotion, pixels, Usage), then run `deepself data download fer2013 --root {root} --from fer2013.tar.gz` "
            f"(or the extracted fer2013.csv). It writes {root}/{{train,dev}}/<emotion>/*.jpg (Training -> train, "
            "PublicTest -> dev, PrivateTest left out), the layout of the imagefolder adapter"
        )
    from PIL import Image  # imported here: only the conversion needs it

    root, source = Path(root), Path(source)
    with contextlib.ExitStack() as stack:
        images = {f"{FER2013_SPLITS[usage]}/{FER2013_EMOTIONS[emotion]}/{usage}_{index:05d}.jpg": pixels
                  for index, (emotion, pixels, usage) in enumerate(_read_fer2013_csv(_fer2013_text(source, stack),
                                                                                     source))
                  if usage in FER2013_SPLITS}
    if not force and images and all((root / target).is_file() for target in images):
        return 0
    with _staging(root) as staging:
        staged = {}
        for target, pixels in images.items():
            staged[target] = staging / target
            staged[target].parent.mkdir(parents=True, exist_ok=True)
            Image.fromarray(pixels).save(staged[target], format="JPEG", quality=95)
        return _move_in(staged, root)


def _fer2013_text(source: Path, stack: contextlib.ExitStack) -> IO[str]:
    """``fer2013.csv`` as text, from the CSV itself or from Kaggle's ``fer2013.tar.gz``."""
    import tarfile

    try:
        if source.suffix.lower() == ".csv":
            return stack.enter_context(open(source, newline=""))
        archive = stack.enter_context(tarfile.open(source))
        member = next((m for m in archive.getmembers() if m.name.endswith("fer2013.csv")), None)
        if member is None:
            raise DeepselfError(f"--from {source}: holds no fer2013.csv")
        return io.TextIOWrapper(stack.enter_context(archive.extractfile(member)), newline="")
    except (OSError, tarfile.TarError) as err:
        raise DeepselfError(f"--from {source}: not a readable CSV or tar file ({err})") from None


def _read_fer2013_csv(text: IO[str], source: Path):
    """Yield ``(emotion, 48 x 48 uint8 image, usage)`` per row; column names as in fer2013.csv or icml_face_data.csv."""
    import numpy as np

    reader = csv.reader(text)
    header = [name.strip().lower() for name in next(reader, [])]
    if not {"emotion", "pixels", "usage"} <= set(header):
        raise DeepselfError(f"{source}: the header is {header}, not emotion, pixels, Usage")
    columns = [header.index(name) for name in ("emotion", "pixels", "usage")]
    for line, row in enumerate(reader, start=2):
        emotion, pixels, usage = (row[c].strip() for c in columns)
        values = pixels.split()
        if (not emotion.isdigit() or int(emotion) >= len(FER2013_EMOTIONS) or len(values) != 48 * 48
                or not all(v.isdigit() and int(v) < 256 for v in values)):
            raise DeepselfError(f"{source}, line {line}: emotion {emotion!r} is not 0-6, or the pixels are not "
                                f"2304 grey levels 0-255 ({len(values)} values)")
        yield int(emotion), np.array(values, dtype=np.int64).astype(np.uint8).reshape(48, 48), usage
