"""Ingest: the files of one modality, as listed in ``samples.csv``, into one HDF5 store of fixed-size arrays.

Signals become float32 (channels, time) at one sample rate and one length (crop or zero-pad);
images become float32 (channels, height, width) in [0, 1]. Files are read twice, once to learn the
common shape and once to write, so memory stays that of one sample however many there are.
"""

from __future__ import annotations

import logging
import os

import librosa
import numpy as np

from deepself.errors import DeepselfError
from deepself.io import readers
from deepself.io.sheet import read_sheet
from deepself.io.store import create_store

log = logging.getLogger(__name__)


def _kind(path: str, declared: str) -> str:
    kind = readers.kind_of(path) if declared == "auto" else declared
    return "image" if kind == "image" else "signal"


def _read_signal(path: str, spec: dict) -> tuple[np.ndarray, float]:
    x, sr = readers.read_signal(path)
    if sr is None:
        sr = spec["sample_rate"]
        if sr is None:
            raise DeepselfError(
                f"{path}: the file carries no sample rate; set data.modalities.<name>.sample_rate"
            )
    if spec["resample"] and spec["resample"] != sr:
        x = librosa.resample(x, orig_sr=sr, target_sr=spec["resample"], axis=-1).astype(np.float32)
        sr = spec["resample"]
    return x, float(sr)


def _fit_length(x: np.ndarray, length: int) -> np.ndarray:
    if x.shape[-1] >= length:
        return x[..., :length]
    return np.pad(x, [(0, 0)] * (x.ndim - 1) + [(0, length - x.shape[-1])])


def ingest(sheet_path: str | os.PathLike, modality: str, spec: dict, out: str | os.PathLike,
           compression: str | None = None) -> dict:
    """Read every sample's file of ``modality`` and write them to the store ``out``.

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

    shapes, rates = [], []
    for sid, path in zip(ids, paths):
        if kind == "image":
            shapes.append(readers.read_image(path, spec["image_mode"], spec["image_size"]).shape)
            continue
        x, sr = _read_signal(path, spec)
        if rates and sr != rates[0]:
            raise DeepselfError(
                f"{path}: sample {sid!r} has sample rate {sr:g} Hz, sample {ids[0]!r} has {rates[0]:g} Hz; "
                f"set {key}.resample"
            )
        if shapes and x.shape[0] != shapes[0][0]:
            raise DeepselfError(
                f"{path}: sample {sid!r} has {x.shape[0]} channels, sample {ids[0]!r} has {shapes[0][0]}"
            )
        rates.append(sr)
        shapes.append(x.shape)

    if kind == "image":
        if len(set(shapes)) > 1:
            odd = next(i for i, s in enumerate(shapes) if s != shapes[0])
            raise DeepselfError(
                f"{paths[odd]}: sample {ids[odd]!r} is {shapes[odd]} (channels, height, width), sample "
                f"{ids[0]!r} is {shapes[0]}; set {key}.image_size and {key}.image_mode"
            )
        sample_shape = shapes[0]
        meta = {"kind": "image", "layout": "CHW", "modality": modality, "n_channels": sample_shape[0]}
    else:
        sr = rates[0]
        length = round(spec["length_s"] * sr) if spec["length_s"] else max(s[1] for s in shapes)
        sample_shape = (shapes[0][0], length)
        meta = {"kind": "signal", "layout": "CT", "modality": modality, "sample_rate": sr,
                "n_channels": sample_shape[0], "n_samples": length}
        if not spec["length_s"] and len({s[1] for s in shapes}) > 1:
            log.info("%s: signals of %d to %d samples zero-padded to %d", modality,
                     min(s[1] for s in shapes), length, length)

    with create_store(out, len(ids), sample_shape, meta, compression) as store:
        for sid, path in zip(ids, paths):
            if kind == "image":
                x = readers.read_image(path, spec["image_mode"], spec["image_size"])
            else:
                x = _fit_length(_read_signal(path, spec)[0], sample_shape[1])
            store.write([sid], x[None].astype(np.float32, copy=False))
    log.info("%s: %d samples of shape %s -> %s", modality, len(ids), sample_shape, out)
    return meta
