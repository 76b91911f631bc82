"""Ingest: the files of one modality, as listed in ``samples.csv``, into one HDF5 store of fixed-size arrays.

Signals become float32 (channels, time) at one sample rate and one length (crop or zero-pad);
images become float32 (channels, height, width) in [0, 1]. A first pass learns the common shape,
from file headers where the format has them, a second writes sample by sample, so memory stays
that of one sample however many there are.
"""

from __future__ import annotations

import logging
import os
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from typing import Iterator

import numpy as np

from deepself.errors import DeepselfError
from deepself.io import readers
from deepself.io.preflight import LENGTH_SPREAD
from deepself.io.readers.image import read_image
from deepself.io.readers.npy import check_npy_layout
from deepself.io.sheet import read_sheet
from deepself.io.store import create_store

log = logging.getLogger(__name__)

# Files decoded at once while writing (the store is written in sheet order by one thread).
READ_THREADS = min(4, os.cpu_count() or 1)


def _kind(path: str, declared: str) -> str:
    kind = readers.kind_of(path) if declared == "auto" else declared
    return "image" if kind == "image" else "signal"


def _rate_of(path: str, sr: float | None, spec: dict) -> float:
    if sr is None:
        sr = spec["sample_rate"]
        if sr is None:
            raise DeepselfError(
                f"{path}: the file carries no sample rate; set data.modalities.<name>.sample_rate"
            )
    return float(sr)


def target_rate(spec: dict, rate: float) -> float:
    """The rate a signal read at ``rate`` is stored at: ``resample``, else ``sample_rate``, else its own.

    ``sample_rate`` is the rate the model sees: a sensor file (which carries no rate) is taken to
    be at it, and an audio file at another rate is resampled to it.
    """
    return float(spec["resample"] or spec["sample_rate"] or rate)


def read_signal(path: str, spec: dict, key: str = "data.modalities.<name>") -> tuple[np.ndarray, float]:
    """Read a signal file as ingest does: the modality's text format, its rate, resampled as ``spec`` says."""
    # ingest settings stored by earlier versions (a checkpoint's store_meta) have no text format: auto
    x, sr = readers.read_signal(path, spec.get("separator", "auto"), spec.get("decimal", "auto"), key)
    sr = _rate_of(path, sr, spec)
    target = target_rate(spec, sr)
    if target != sr:
        import librosa  # only resampling needs it (about 1 s of imports): sensor and image ingest start without

        x = librosa.resample(x, orig_sr=sr, target_sr=target, axis=-1).astype(np.float32)
    return x, target


def _probe_signal(path: str, spec: dict, need_length: bool,
                  key: str) -> tuple[int | None, int | None, float, float]:
    """``(channels, length, sample rate, the file's own rate)`` of a signal file as ingest will read it, reading little.

    Audio files and .npy arrays give their shape in their header; a text table must be read
    whole, which is done only when its length is needed (else channels and length are None and
    are checked when the file is read for writing). Lengths and the sample rate are after
    resampling (librosa's length: ``ceil(length * new_rate / rate)``). Files whose header cannot be
    read are read whole, so that their error is the reader's.
    """
    suffix = os.path.splitext(path)[1].lower()
    try:
        if readers.kind_of(path) == "audio":
            import soundfile  # audio only

            info = soundfile.info(path)
            channels, length, sr = info.channels, info.frames, float(info.samplerate)
        elif suffix == ".npy":
            shape = np.load(path, mmap_mode="r", allow_pickle=False).shape
            if len(shape) not in (1, 2) or 0 in shape:
                raise ValueError(shape)
            check_npy_layout(path, shape)
            channels, length, sr = (1 if len(shape) == 1 else shape[1]), shape[0], None
        elif not need_length:
            sr = _rate_of(path, None, spec)
            return None, None, target_rate(spec, sr), sr
        else:
            raise ValueError("a text table has no header to read its shape from")
    except (RuntimeError, TypeError, ValueError, OSError):
        x, sr = read_signal(path, spec, key)  # text tables: no rate of their own; audio: fails reading
        return x.shape[0], x.shape[1], sr, sr
    sr = _rate_of(path, sr, spec)
    target = target_rate(spec, sr)
    if target != sr:
        length = int(np.ceil(length * (target / sr)))
    return channels, length, target, sr


def fit_length(x: np.ndarray, length: int) -> np.ndarray:
    if x.shape[-1] >= length:
        return x[..., :length]
    return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, length - x.shape[-1])])


def _in_order(read, ids: list[str], paths: list[str]) -> Iterator[np.ndarray]:
    """``read(id, path)`` of every sample, in sheet order, decoded by a few threads at once.

    Decoders (libsndfile, Pillow, pandas) release the GIL; a window of at most
    2 x :data:`READ_THREADS` samples is in flight, so memory stays that of a few samples. The first
    error in sheet order is raised.
    """
    with ThreadPoolExecutor(READ_THREADS) as pool:
        pending: deque = deque()
        for sid, path in zip(ids, paths):
            pending.append(pool.submit(read, sid, path))
            if len(pending) > 2 * READ_THREADS:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()


def _check_signal(sid: str, path: str, first: str, sr: float, channels: int | None, key: str,
                  expected_sr: float | None, expected_channels: int | None) -> None:
    if expected_sr is not None and sr != expected_sr:
        raise DeepselfError(
            f"{path}: sample {sid!r} has sample rate {sr:g} Hz, sample {first!r} has {expected_sr:g} Hz; "
            f"set {key}.resample"
        )
    if None not in (channels, expected_channels) and channels != expected_channels:
        raise DeepselfError(
            f"{path}: sample {sid!r} has {channels} channels, sample {first!r} has {expected_channels}"
        )


def _say_resampled(own_rates: list[float], rate: float, spec: dict, key: str) -> None:
    """Warn once that audio files at another rate than ``sample_rate`` are resampled to it.

    ``resample`` asks for resampling in so many words; ``sample_rate`` names the rate the model
    sees, and audio files that turn out to have another are resampled too, but said so.
    """
    other = sorted({own for own in own_rates if own != rate})
    if other and not spec["resample"]:
        n = sum(own != rate for own in own_rates)
        log.warning("%s: %d of %d files are at %s Hz, not sample_rate %g Hz: resampled to %g Hz (set %s.resample: "
                    "%g to say so and silence this, or sample_rate to their rate to keep it)", key, n, len(own_rates),
                    " and ".join(f"{r:g}" for r in other), rate, rate, key, rate)


def _say_padded(lengths: list[int], ids: list[str], rate: float, channels: int, key: str) -> None:
    """Log the zero-padding of signals to the longest; warn, with the fix, when the longest is far above the median.

    The same rule as the check before any job (:func:`deepself.io.preflight.preflight`), which cannot
    measure text tables: ingest can, it reads them anyway.
    """
    longest, median = max(lengths), float(np.median(lengths))
    if longest <= LENGTH_SPREAD * median:
        log.info("%s: signals of %d to %d samples zero-padded to %d", key, min(lengths), longest, longest)
        return
    sid = ids[lengths.index(longest)]
    size = 4.0 * len(lengths) * channels * longest
    log.warning("%s: signals of %d to %d samples (median %g) are zero-padded to the longest, sample %r (%g s, %.0fx "
                "the median): %d x %d x %d float32 = %.3g GB; set %s.length_s to crop or pad every recording to that "
                "many seconds (e.g. %g), or split the long recordings into pieces of the usual length", key,
                min(lengths), longest, median, sid, longest / rate, longest / median, len(lengths), channels, longest,
                size / 1e9, key, median / rate)


def _survey_images(paths: list[str], ids: list[str], modality: str, spec: dict, key: str) -> tuple[tuple, dict]:
    """The common shape of the images (channels, height, width) and the store's metadata: ingest's first pass."""
    shapes = [read_image(path, spec["image_mode"], spec["image_size"]).shape for path in paths]
    if len(set(shapes)) > 1:
        odd = next(i for i, s in enumerate(shapes) if s != shapes[0])
        raise DeepselfError(
            f"{paths[odd]}: sample {ids[odd]!r} is {shapes[odd]} (channels, height, width), sample "
            f"{ids[0]!r} is {shapes[0]}; set {key}.image_size and {key}.image_mode"
        )
    sample_shape = shapes[0]
    meta = {"kind": "image", "layout": "CHW", "modality": modality, "n_channels": sample_shape[0]}
    return sample_shape, meta


def _survey_signals(paths: list[str], ids: list[str], modality: str, spec: dict, key: str) -> tuple[tuple, dict]:
    """The common shape of the signals (channels, time) and the store's metadata, from the files' headers where
    the format has one: ingest's first pass."""
    need_length = not spec["length_s"]
    channels, lengths, sr, own_rates = None, [], None, []
    for i, (sid, path) in enumerate(zip(ids, paths)):
        c, length, rate, own = _probe_signal(path, spec, need_length or i == 0, key)
        _check_signal(sid, path, ids[0], rate, c, key, sr, channels)
        channels, sr = channels or c, rate
        lengths.append(length)
        own_rates.append(own)
    _say_resampled(own_rates, sr, spec, key)
    length = round(spec["length_s"] * sr) if spec["length_s"] else max(lengths)
    sample_shape = (channels, length)
    meta = {"kind": "signal", "layout": "CT", "modality": modality, "sample_rate": sr,
            "n_channels": channels, "n_samples": length}
    if need_length and len(set(lengths)) > 1:
        _say_padded(lengths, ids, sr, channels, key)
    return sample_shape, meta


def ingest(sheet_path: str | os.PathLike, modality: str, spec: dict, out: str | os.PathLike,
           compression: str | None = None) -> dict:
    """Read every sample's file of ``modality`` and write them to the store ``out``.

    Memory stays that of one sample however many there are: a first pass learns the common shape
    (from file headers where the format has one: audio, .npy; text tables are read whole only
    when no ``length_s`` fixes the length), a second reads and writes one sample at a time.

    Parameters
    ----------
    sheet_path
        ``samples.csv`` written by the sheet stage.
    modality
        Modality name; ``spec["column"]`` names its path column.
    spec
        The validated ``data.modalities.<modality>`` config.
    out
        Store to write (see :mod:`deepself.io.store`).
    compression : {None, "gzip", "lzf"}
        HDF5 compression of the store.

    Returns
    -------
    dict
        The store's metadata.
    """
    sheet = read_sheet(sheet_path)
    paths = list(sheet[spec["column"]])
    ids = list(sheet["id"])
    kinds = {_kind(p, spec["kind"]) for p in paths}
    if len(kinds) > 1:
        raise DeepselfError(f"data.modalities.{modality}: mixes images and signals; use one modality for each")
    kind = kinds.pop()
    key = f"data.modalities.{modality}"

    if kind == "image":
        sample_shape, meta = _survey_images(paths, ids, modality, spec, key)
    else:
        sample_shape, meta = _survey_signals(paths, ids, modality, spec, key)
        sr, channels, length = meta["sample_rate"], meta["n_channels"], meta["n_samples"]
    # how the files were read travels with the store, so that `deepself predict` reads new files alike
    meta["ingest"] = spec

    def read(sid: str, path: str) -> np.ndarray:
        if kind == "image":
            return read_image(path, spec["image_mode"], spec["image_size"])
        x, rate = read_signal(path, spec, key)
        _check_signal(sid, path, ids[0], rate, x.shape[0], key, sr, channels)
        if not spec["length_s"] and x.shape[1] > length:
            raise DeepselfError(f"{path}: sample {sid!r} changed while being ingested "
                                f"({x.shape[1]} samples, {length} when first read)")
        return fit_length(x, length)

    with create_store(out, len(ids), sample_shape, meta, compression) as store:
        for sid, x in zip(ids, _in_order(read, ids, paths)):
            store.write([sid], x[None])
    log.info("%s: %d samples of shape %s -> %s", modality, len(ids), sample_shape, out)
    return meta
