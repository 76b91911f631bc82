"""Fuzz the readers: random bytes and damaged valid files raise DeepselfError or read, never anything else.

Valid seed files of every accepted format are damaged the ways files get damaged (cut short, bytes
overwritten, bytes inserted or deleted, a block repeated); random bytes are given every accepted
extension. :func:`read_signal` and :func:`read_image` must either return a finite float32 array of
the documented shape or raise :class:`DeepselfError`. Examples are bounded and seeded
(``derandomize``), so that a run takes seconds and a failure repeats.
"""

from __future__ import annotations

import io
import itertools
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from PIL import Image

from deepself.errors import DeepselfError
from deepself.io.readers import AUDIO_EXT, IMAGE_EXT, SENSOR_EXT, read_signal
from deepself.io.readers.image import read_image

FUZZ = settings(max_examples=400, deadline=None, derandomize=True, database=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
_names = itertools.count()


def _audio(fmt: str, subtype: str, channels: int) -> bytes:
    rng = np.random.default_rng(channels)
    buffer = io.BytesIO()
    sf.write(buffer, (0.3 * rng.standard_normal((64, channels))).astype(np.float32), 8000, format=fmt, subtype=subtype)
    return buffer.getvalue()


def _image(fmt: str, mode: str) -> bytes:
    rng = np.random.default_rng(1)
    if mode == "I;16":
        image = Image.fromarray(rng.integers(0, 65535, size=(5, 6), dtype=np.uint16))
    else:
        shape = (5, 6, 3) if mode == "RGB" else (5, 6)
        image = Image.fromarray(rng.integers(0, 255, size=shape, dtype=np.uint8), mode=mode)
    buffer = io.BytesIO()
    image.save(buffer, format=fmt)
    return buffer.getvalue()


def _npy(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    np.save(buffer, array, allow_pickle=False)
    return buffer.getvalue()


SEEDS = {
    "pcm16.wav": _audio("WAV", "PCM_16", 2),
    "float.wav": _audio("WAV", "FLOAT", 1),
    "mono.flac": _audio("FLAC", "PCM_16", 1),
    "mono.ogg": _audio("OGG", "VORBIS", 1),
    "header.csv": b"ax,ay,az\n0.1,0.2,0.3\n-1,2e-3,4\n5,6,7\n",
    "tabs.tsv": b"1\t2\n3\t4\n5\t6\n",
    "spaces.txt": b"1.5 2.5\n  3 4\n5 6\n",
    "array.npy": _npy(np.arange(30, dtype=np.float64).reshape(10, 3)),
    "ints.npy": _npy(np.arange(12, dtype=np.int16)),
    "rgb.png": _image("PNG", "RGB"),
    "grey16.png": _image("PNG", "I;16"),
    "grey.jpg": _image("JPEG", "L"),
    "rgb.bmp": _image("BMP", "RGB"),
}
EXTENSIONS = AUDIO_EXT + SENSOR_EXT + IMAGE_EXT


@pytest.fixture(scope="module")
def folder(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("fuzz")


def test_every_seed_reads(folder):
    """The seeds are valid files: damage to them, not the seeds, is what the fuzzing below tries."""
    for name, content in SEEDS.items():
        path = folder / name
        path.write_bytes(content)
        x = read_image(path) if path.suffix in IMAGE_EXT else read_signal(path)[0]
        assert x.dtype == np.float32 and x.size > 0 and np.isfinite(x).all(), name


# Library bugs this fuzzing found are fixed and pinned by the tests at the end; none is tolerated.
KNOWN: set[tuple[str, str]] = set()


def read_or_refuse(path: Path, mode, size) -> None:
    """Read with the reader its extension calls for; a DeepselfError is a fine answer, anything else is not."""
    try:
        if path.suffix in IMAGE_EXT:
            x = read_image(path, mode, size)
            assert x.ndim == 3 and x.shape[0] in (1, 3) and (size is None or x.shape[1:] == size)
            assert x.min() >= 0.0 and x.max() <= 1.0
        else:
            x, rate = read_signal(path)
            assert x.ndim == 2 and x.shape[1] > 0 and (rate is None or rate > 0)
        assert x.dtype == np.float32 and np.isfinite(x).all()
    except DeepselfError as err:
        assert str(path) in str(err), f"the message does not name the file: {err}"
    except Exception as err:
        if (path.suffix, type(err).__name__) not in KNOWN:
            raise


def _write(folder: Path, suffix: str, content: bytes) -> Path:
    path = folder / f"f{next(_names)}{suffix}"
    path.write_bytes(content)
    return path


MODES = st.sampled_from([None, "L", "RGB"])
SIZES = st.sampled_from([None, (4, 3)])


@FUZZ
@given(suffix=st.sampled_from(EXTENSIONS), content=st.binary(max_size=1024), mode=MODES, size=SIZES)
def test_random_bytes(folder, suffix, content, mode, size):
    read_or_refuse(_write(folder, suffix, content), mode, size)


@st.composite
def damaged(draw) -> tuple[str, bytes]:
    name = draw(st.sampled_from(sorted(SEEDS)))
    data = bytearray(SEEDS[name])
    for _ in range(draw(st.integers(1, 3))):
        if not data:
            break
        at = draw(st.integers(0, len(data) - 1))
        how = draw(st.sampled_from(["cut", "overwrite", "insert", "delete", "repeat"]))
        if how == "cut":
            del data[at:]
        elif how == "overwrite":
            chunk = draw(st.binary(min_size=1, max_size=8))
            data[at : at + len(chunk)] = chunk
        elif how == "insert":
            data[at:at] = draw(st.binary(min_size=1, max_size=16))
        elif how == "delete":
            del data[at : at + draw(st.integers(1, 16))]
        else:
            data[at:at] = data[at : at + draw(st.integers(1, 64))]
    return Path(name).suffix, bytes(data)


@FUZZ
@given(file=damaged(), mode=MODES, size=SIZES)
def test_damaged_valid_files(folder, file, mode, size):
    suffix, content = file
    read_or_refuse(_write(folder, suffix, content), mode, size)


def _npy_with_header(header: str, payload: bytes = b"\x00" * 16) -> bytes:
    """A version 1.0 .npy file with this header dictionary text (padded as numpy pads it)."""
    text = header.encode("latin1")
    text += b" " * ((64 - (10 + len(text) + 1) % 64) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(text).to_bytes(2, "little") + text + payload


def test_a_damaged_npy_header_is_refused(folder):
    path = _write(folder, ".npy", _npy_with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (10, 3"))
    with pytest.raises(DeepselfError, match="cannot be read as a .npy array"):
        read_signal(path)


def test_an_npy_header_claiming_a_huge_array_is_refused(folder):
    path = _write(folder, ".npy", _npy_with_header("{'descr': '<f8', 'fortran_order': False, 'shape': (10**12,), }"
                                                   .replace("10**12", str(10**12))))
    with pytest.raises(DeepselfError, match="npy"):
        read_signal(path)
