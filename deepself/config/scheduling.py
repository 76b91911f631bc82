"""GPU scheduling of training jobs for the job graph: GPU units, folds per job, fitted heads (no torch)."""

from __future__ import annotations

import glob
import os
import sys


def local_gpu() -> bool:
    """Whether the machine that runs snakemake has an NVIDIA GPU that ``CUDA_VISIBLE_DEVICES`` leaves visible.

    Seen in the driver's ``/proc`` entries, without importing torch, which would cost the DAG seconds.
    """
    hidden = os.environ.get("CUDA_VISIBLE_DEVICES") in ("", "-1")
    return bool(glob.glob("/proc/driver/nvidia/gpus/*")) and not hidden


def training_gpu_units(train: dict) -> int:
    """Units of the workflow's ``gpu`` resource a training job takes (``train.gpu``).

    ``auto``: 1 when :func:`local_gpu`, else 0, so that CPU-only training jobs are limited by
    ``--cores`` alone.
    """
    if train["gpu"] != "auto":
        return int(train["gpu"])
    return int(local_gpu())


# Models whose training fits a head on features computed once (no epochs): a fold takes seconds
FITTED_HEAD_ARCHS = ("minirocket", "multirocket", "hydra", "multirocket_hydra")


def fits_a_head(model: dict) -> bool:
    """Whether the validated ``models.<name>`` entry fits a head on frozen features (a rocket, a probe).

    The same answer as ``deepself.training.data.fits_a_head``, which asks the model's builder; this one
    imports no torch, for the job graph (a test holds the two together).
    """
    return model["arch"] in FITTED_HEAD_ARCHS or model["args"].get("train_mode") == "probe"


def training_folds_per_job(train: dict, fitted_head: bool = False) -> int:
    """Held-out folds that one training job trains in turn (``train.folds_per_job``).

    ``auto``: all of a model's folds in one job when its jobs take the local GPU (:func:`local_gpu`
    and a ``gpu`` unit: they would wait for it one after the other anyway, and each further job pays
    its start-up, seconds of imports, CUDA and reading the data, against about 3 s of training a
    fold in the ESC-10 benchmark on an H200), or when the model fits a head on frozen features
    (``fitted_head``, :func:`fits_a_head`: a rocket's fold fits in seconds after a start-up of
    imports and numba's compiled transform, and a probe's folds share one pass of embeddings);
    else 1, a job per fold, so that the folds of a CPU-only machine (or of a cluster's nodes,
    submitted from a machine without a GPU) train side by side.
    """
    if train["folds_per_job"] != "auto":
        return int(train["folds_per_job"])
    return sys.maxsize if fitted_head or (training_gpu_units(train) and local_gpu()) else 1
