"""What the workflow learns from the samples before any job runs: :func:`preflight`.

The sheet's rows, files, labels, class counts and fold names are checked as the sheet stage
(:mod:`deepself.io.sheet`) will check them; the signal files' headers are read, and the files'
content digests are made for the job graph.
"""

from __future__ import annotations

import hashlib
import logging
import math
import os
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

from deepself.datasets import adapters
from deepself.errors import DeepselfError
from deepself.io.filehash import HashCache
from deepself.io.folds import check_fold_names, check_folds, fold_name, held_out_folds
from deepself.io.readers import AUDIO_EXT, kind_of
from deepself.io.readers.npy import check_npy_layout, npy_shape
from deepself.io.sheet import CONVERTED_KIND, checked_rows, class_names

log = logging.getLogger(__name__)

# Adapters whose sheet only lists files (cheap enough to build while the workflow is parsed).
_LISTING_ADAPTERS = ("esc10", "bonn", "imagefolder")
# Recordings are zero-padded to the longest: a longest over this many times the median is warned
# about before any job (more than three quarters of a typical padded recording would be zeros).
LENGTH_SPREAD = 4.0


@dataclass
class Preflight:
    """What the workflow learns from the samples before any job runs.

    ``folds``: the held-out folds. ``digests``: per modality, a digest of the path, size and
    modification time (ns) of each of its files (modalities whose files are written by the sheet
    stage have none). ``listing``: a digest of every path of the sheet.
    """

    folds: list[str]
    digests: dict[str, str] = field(default_factory=dict)
    listing: str = ""


def preflight(data: dict, cv: dict, hash_cache: str | os.PathLike | None = None) -> Preflight:
    """Check the samples as far as that needs no job, and say what the job graph needs to know.

    Runs while the workflow is parsed (and in ``deepself check-config``): the sheet's rows, files,
    labels, class counts and fold names are checked as the sheet stage will check them, and a
    sensor modality without ``sample_rate`` is refused. Only what needs the folds assigned
    (k-fold) or files converted (aeon, digits) waits for the sheet stage.

    Why digests of the files' contents: Snakemake reruns a job when an input is newer than its
    output, or when a parameter changed since the job last ran (its ``params`` trigger, Snakemake
    8). The ingest rule takes its modality's digest (each file's path and SHA-256) as a parameter,
    so that editing, replacing or restoring (with an older time: ``cp -p``, ``rsync -a``, ``tar``)
    any listed file reruns ingest and, through the newer stores, everything after it, and a dry run
    says so ("Params have changed"), while ``touch`` or a rewrite with the same bytes reruns
    nothing. The files themselves as inputs would rerun on a touch, miss a replacement with an
    older time and put every file into the job graph. The hashes are cached by each file's stat
    (:mod:`deepself.io.filehash`, in ``hash_cache``): an unchanged file costs one stat, a changed
    one is read once. See benchmarks/README.md for 10,000 files.

    The headers of signal files are read too (see :func:`_check_signal_headers`): a 2-D ``.npy``
    array that looks saved ``(channels, time)`` is refused, and recordings of very different
    lengths, which ingest would zero-pad to the longest, are warned about. Warnings are logged
    (``deepself.io.preflight``): on the console while the workflow is parsed and in ``check-config``.

    Parameters
    ----------
    data, cv
        The validated ``data`` and ``cv`` sections of the config.

    Returns
    -------
    Preflight

    Raises
    ------
    DeepselfError
        As :func:`deepself.io.sheet.build_sheet` would, for a missing ``sample_rate`` of sensor files, and for a
        ``.npy`` file whose 2-D array has more columns than rows.
    """
    adapter = data["adapter"]
    sheet = None
    if adapter == "sheet" or adapter in _LISTING_ADAPTERS:
        sheet, origin, _ = checked_rows(data, cv, None, warn=False, warn_early=True)
    for name, modality in data["modalities"].items():
        if modality["sample_rate"] or modality["kind"] in ("audio", "image"):
            continue
        if sheet is None:
            paths = [] if CONVERTED_KIND[adapter] != "sensor" else [f"data.adapter {adapter}"]
        else:
            paths = [p for p in sheet[modality["column"]] if kind_of(p) == "sensor"]
        if paths:
            raise DeepselfError(f"config key data.modalities.{name}.sample_rate: missing, and {paths[0]} holds a "
                                "sensor signal (text table or .npy), which carries no sample rate: set it in Hz")
    hashes = HashCache(hash_cache) if sheet is not None else None
    if sheet is not None:
        for name, modality in data["modalities"].items():
            _check_signal_headers(sheet, name, modality, hashes)
    plan = Preflight(_folds(data, cv, sheet))
    if sheet is not None:
        check_fold_names(plan.folds, origin)
        for name, modality in data["modalities"].items():
            files = sorted(set(sheet[modality["column"]]))
            content = hashes.hashes(files)  # resolved by _resolve_paths: absolute and normalised
            plan.digests[name] = _digest(f"{f}\t{content[f]}" for f in files)
        plan.listing = _digest(sorted(set(sheet[[m["column"] for m in data["modalities"].values()]].to_numpy().ravel())))
        if cv["folds"] == "from_sheet":
            check_folds(sheet.assign(fold=sheet["fold"].map(fold_name)), class_names(sheet, data), cv, origin)
    return plan


def _npy_shape(path: str) -> list[int] | None:
    try:
        return list(npy_shape(path))
    except DeepselfError:
        return None  # ingest's reader names what is wrong with it (empty, truncated, ...)


def _audio_info(path: str) -> list | None:
    import soundfile  # only sheets with audio need it

    try:
        info = soundfile.info(path)
    except (RuntimeError, TypeError, ValueError, OSError):
        return None
    return [info.frames, info.samplerate, info.channels]


def _check_signal_headers(sheet: pd.DataFrame, name: str, modality: dict, cache: HashCache) -> None:
    """Check what the headers of a modality's signal files tell, reading nothing else.

    Every ``.npy`` header is read (shape: :func:`deepself.io.readers.npy.check_npy_layout`). Without
    ``length_s``, ingest zero-pads every recording to the longest, so the durations that headers
    give (``.npy`` at ``sample_rate``; audio by ``soundfile.info``, about 0.06 ms a file) are
    compared: a longest recording more than :data:`LENGTH_SPREAD` times the median is warned
    about, with the padded size and the fix. Text tables are not measured (their length needs the
    whole file read): ingest, which reads them anyway, warns about them. A file whose header
    cannot be read is left to ingest, whose reader names what is wrong with it.
    """
    if modality["kind"] == "image":
        return
    measure = not modality["length_s"]
    column = list(zip(sheet["id"], sheet[modality["column"]]))
    suffix = {path: os.path.splitext(path)[1].lower() for _, path in column}
    shapes = cache.headers("npy_shape", [p for p in suffix if suffix[p] == ".npy"], _npy_shape)
    infos = cache.headers("audio_info", [p for p in suffix if suffix[p] in AUDIO_EXT], _audio_info) \
        if measure else {}
    lengths = []  # (seconds, channels, sample id, rate) of the files whose header tells
    for sid, path in column:
        if shapes.get(path) is not None:
            shape = tuple(shapes[path])
            check_npy_layout(path, shape)
            if measure and modality["sample_rate"] and len(shape) in (1, 2):
                channels = 1 if len(shape) == 1 else shape[1]
                lengths.append((shape[0] / modality["sample_rate"], channels, sid, modality["sample_rate"]))
        elif infos.get(path) is not None:
            frames, rate, channels = infos[path]
            lengths.append((frames / rate, channels, sid, rate))
    if lengths:
        _warn_length_spread(lengths, name, modality, len(sheet))


def _warn_length_spread(lengths: list[tuple[float, int, str, float]], name: str, modality: dict,
                        n_samples: int) -> None:
    """Warn when the longest recording is over :data:`LENGTH_SPREAD` times the median: all are padded to it."""
    seconds = np.array([length[0] for length in lengths])
    median, (longest, channels, sid, rate) = float(np.median(seconds)), max(lengths)
    if longest <= LENGTH_SPREAD * median:
        return
    padded = math.ceil(longest * (modality["resample"] or modality["sample_rate"] or rate))
    key = f"data.modalities.{name}"
    log.warning("%s: recordings of %g to %g s, median %g s: ingest zero-pads every one to the longest, sample %r "
                "(%g s, %.0fx the median) (%d x %d x %d float32 = %s in the store, and every feature map and "
                "training batch padded alike); set %s.length_s to crop or pad every recording to that many seconds "
                "(e.g. %g), or split the long recordings into pieces of the usual length", key, seconds.min(),
                longest, median, sid, longest, longest / median, n_samples, channels, padded,
                _size(4.0 * n_samples * channels * padded), key, median)


def _size(n_bytes: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB"):
        if n_bytes < 1000 or unit == "GB":
            return f"{n_bytes:.3g} {unit}"
        n_bytes /= 1000
    return ""


def _digest(lines) -> str:
    h = hashlib.sha256()
    for line in lines:
        h.update(line.encode() + b"\n")
    return h.hexdigest()


def _folds(data: dict, cv: dict, sheet: pd.DataFrame | None) -> list[str]:
    if cv["folds"] != "from_sheet":
        folds = [str(i + 1) for i in range(cv["folds"])]
    elif sheet is not None and "fold" in sheet.columns and data["adapter"] == "sheet":
        folds = sorted(set(sheet["fold"].map(fold_name)) - {""})
    elif data["adapter"] == "sheet":
        raise DeepselfError(f"{data['sheet']}: cv.folds is from_sheet but the sheet has no fold column")
    else:
        folds = adapters.static_folds(data["adapter"], data["root"])
        if folds is None:
            raise DeepselfError(
                f"config key cv.folds: data.adapter {data['adapter']} defines no folds; set cv.folds to a number"
            )
    return held_out_folds(folds, cv)


def fold_names(data: dict, cv: dict) -> list[str]:
    """The held-out folds of an experiment, known before any job runs (the job graph needs them)."""
    return preflight(data, cv).folds
