"""Replay a model's preprocessing on a new file: the steps that made its training store.

A checkpoint carries the meta of the store its model learned from, and with it every step that
made that store: how the files were read (the modality's ingest settings, ``store_meta["ingest"]``:
sample rate, resampling, crop or pad, image size and mode), the band-pass (``filter``), the
feature map (``feature_kind``, ``feature_params``), and the normalisation statistics of the
fold's training part. :func:`model_input` replays those steps on one new file with the very
functions the stages use (the readers, ingest's resampling and crop/pad, ``bandpass``,
``features.compute``), so that a file of the training set gets exactly the input it had there.

numpy and the stages are imported by the functions that use them (the command line imports this
module for every subcommand).
"""

from __future__ import annotations

import logging
import os
from typing import TYPE_CHECKING

from deepself.errors import DeepselfError

if TYPE_CHECKING:
    import numpy as np

log = logging.getLogger(__name__)


def ingest_spec(meta: dict) -> dict:
    """How the store's files were read: ``meta["ingest"]``, the modality's validated config."""
    return meta["ingest"]


def model_input(path: str | os.PathLike, checkpoint: dict) -> np.ndarray:
    """One file as the checkpoint's model input, before normalisation: exactly the steps of its store.

    Signals: read, resampled and cropped or zero-padded to the stored length as ingest does,
    band-passed when the store was, then the stored feature map. Images: read at the stored size
    and colour mode.

    Parameters
    ----------
    path
        An audio, sensor or image file of the kind the model learned from.
    checkpoint
        As :func:`deepself.inference.load_checkpoint` returns it.

    Returns
    -------
    numpy.ndarray
        float32 of shape :func:`deepself.inference.input_shape`.

    Raises
    ------
    DeepselfError
        Naming the file when it cannot be read, has another sample rate or channel count than
        the model's input shape.
    """
    import numpy as np

    from deepself.inference import input_shape, shape_text
    from deepself.io import ingest, readers
    from deepself.io.readers.image import read_image
    from deepself.signal import features, filtering

    meta = checkpoint["store_meta"]
    spec = ingest_spec(meta)
    expected = input_shape(checkpoint)
    if meta["kind"] == "image":
        x = read_image(path, spec["image_mode"], spec["image_size"])
    else:
        if spec.get("sample_rate") is None and readers.kind_of(str(path)) != "audio":
            # the model's files carried their own rate (audio); a bare array says nothing of its rate
            raise DeepselfError(f"{path}: the model learned from audio at {meta['sample_rate']:g} Hz; give an "
                                f"audio file ({', '.join(readers.AUDIO_EXT)})")
        x, rate = ingest.read_signal(str(path), spec)  # reader and resampling, as ingest does
        if rate != meta["sample_rate"]:
            hint = "" if spec.get("resample") else " (the model was trained without resampling)"
            raise DeepselfError(f"{path}: sample rate {rate:g} Hz, the model learned from signals at "
                                f"{meta['sample_rate']:g} Hz{hint}")
        if x.shape[0] != meta["n_channels"]:
            raise DeepselfError(f"{path}: {x.shape[0]} channels, the model learned from signals with "
                                f"{meta['n_channels']}")
        if not checkpoint.get("windows"):  # a windowed model takes a recording of any length of one window or more
            x = _fit_length(x, int(meta["n_samples"]), rate, path)
        modality = meta.get("modality", "<name>")
        if meta.get("filter"):
            x = filtering.bandpass(x, rate, meta["filter"]["band"], meta["filter"]["order"],
                                   key=f"data.modalities.{modality}.filter")
        if meta.get("feature_kind"):
            x = features.compute(meta["feature_kind"], x, rate, meta["feature_params"],
                                 key=f"features.{meta.get('feature', '<name>')}")
    windowed = checkpoint.get("windows")
    if tuple(x.shape[:-1] if windowed else x.shape) != (expected[:-1] if windowed else expected):
        raise DeepselfError(f"{path}: gives an input of {shape_text(x.shape)}, the model takes "
                            f"{shape_text(expected)}{' (any length along the last axis)' if windowed else ''}")
    if windowed:
        from deepself.training.windows import starts

        starts(x.shape[-1], windowed["length"], windowed["eval_hop"], what=str(path))  # shorter than a window: refused
    return np.ascontiguousarray(x, dtype=np.float32)


def _fit_length(x: np.ndarray, length: int, rate: float, path) -> np.ndarray:
    """``x`` cropped or zero-padded to the trained ``length`` as ingest did, with a warning naming the file."""
    from deepself.io import ingest

    if x.shape[-1] != length:
        done = "cropped" if x.shape[-1] > length else "zero-padded"
        log.warning("%s: %d samples (%.3g s), the model learned from %d (%.3g s): %s to %d samples", path,
                    x.shape[-1], x.shape[-1] / rate, length, length / rate, done, length)
    return ingest.fit_length(x, length)

