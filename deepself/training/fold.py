"""Train one model on one cross-validation fold, keep the epoch with the best development UAR, predict.

The fold's held-out samples are never seen until the kept model predicts them: the development
split that chooses the epoch and the normalisation statistics both come from the training folds.
A head fitted on frozen features (``train_mode: probe``, MiniRocket, MultiRocket:
:func:`~deepself.training.data.fits_a_head`) has no development split: it is fitted on the whole
training part, and cross-validation over that part chooses its hyperparameter
(:mod:`deepself.training.probe`, :mod:`deepself.training.ridge`).

A job reads the sample sheet and the store once (:class:`~deepself.training.data.TrainingData`),
however many folds it trains in turn (:func:`train_fold_on`). The loop reads top to bottom:
:func:`~deepself.training.loop.set_up` builds the model, its optimiser and the one
:class:`~deepself.inference.Forward` that training, evaluation, the probe and prediction share;
:func:`~deepself.training.loop.train_epoch` and :func:`~deepself.training.loop.evaluate` run an
epoch; :class:`~deepself.training.resume.Resume` keeps the job's state in ``resume.pt`` so that a
killed or pre-empted job that is started again continues where it stopped and ends with the
predictions an uninterrupted run gives; :func:`~deepself.training.outputs.finish` writes the fold's
files: besides the held-out fold's ``predictions.csv``, ``dev_predictions.csv``, the same columns for
the samples the kept model was chosen on (the development split's predictions, each half's from the
epoch the other half chooses: :func:`cross_fitted`; a fitted head's cross-validated, out-of-sample
predictions of the whole training part; no rows without a development split), which the ``select``
fusion learns from.
"""
from __future__ import annotations

import os
import time
from pathlib import Path

import numpy as np
import torch

from deepself.scoring.metrics import uar
from deepself.training import probe
from deepself.training.data import Split, TrainingData
from deepself.training.loop import Trainer, evaluate, record, set_up, train_epoch
from deepself.training.optim import scheduler_step
from deepself.training.outputs import finish
from deepself.training.resume import Preempted, Progress, Resume, discard_resume, resume_identity, sigterm_requests_stop


def train_fold_on(data: TrainingData, fold: str, spec: dict, out_dir: str | os.PathLike,
                  keep_resume: bool = False, resume_every_s: float = 300.0) -> dict:
    """Train ``spec`` on every fold of ``data`` but ``fold``, keep the best development epoch, predict ``fold``.

    Parameters
    ----------
    data
        The job's samples (:class:`TrainingData`), shared by the folds it trains.
    fold
        The held-out fold.
    spec
        ``{"name", "arch", "feature", "args", "train", "classes", "dev_fraction", "cv_seed"}``:
        the validated model config plus what the job needs of the experiment.
    out_dir
        Receives ``checkpoint.pt``, ``history.csv``, ``predictions.csv``, ``dev_predictions.csv`` and
        ``summary.json``.
    keep_resume
        Keep ``resume.pt`` after the last epoch (a job training several folds in turn removes it
        with :func:`discard_resume` once all are done): started again, this fold then only predicts.
    resume_every_s
        Seconds between writes of ``resume.pt`` (:class:`Resume`; the config's ``train.resume_every_s``).

    Returns
    -------
    dict
        The summary: best epoch, its development UAR, the held-out UAR, the log-loss and mean top
        probability of the development (or cross-validated) and the held-out predictions, sizes and time.

    Notes
    -----
    Every seed is set here, from ``spec`` alone, so folds trained in turn in one process give
    the outputs that one process per fold gives.
    """
    started, hp, out_dir = time.perf_counter(), spec["train"], Path(out_dir)
    split = data.split(fold, spec)
    t = set_up(data, split, spec)
    if t.model.fits_a_head:  # no epochs: a regression on the embeddings, CV on all
        progress, dev_proba = fit_head(t, data, split, spec)
        return finish(t, data, split, spec, progress, (split.fit, dev_proba), out_dir, time.perf_counter() - started)
    resume = Resume(out_dir / "resume.pt", resume_identity(spec, fold, data), resume_every_s)
    progress = resume.load(t, hp["epochs"])
    y_dev, n_classes = data.y[split.dev].cpu().numpy(), len(data.classes)
    with sigterm_requests_stop() as stop:
        while progress.epoch < hp["epochs"] and not (hp["patience"] and progress.stale >= hp["patience"]):
            t0 = time.perf_counter()
            loss = train_epoch(t, data, split, hp)
            p_dev = evaluate(t, split.dev, hp) if len(split.dev) else None
            dev_uar = uar(y_dev, p_dev.argmax(1).numpy(), n_classes) if len(split.dev) else float("nan")
            record(progress, t, loss, p_dev, y_dev, dev_uar, time.perf_counter() - t0, len(split.fit), hp)
            scheduler_step(t, dev_uar)
            last = progress.epoch == hp["epochs"] or (hp["patience"] and progress.stale >= hp["patience"])
            if stop.is_set() or resume.due() or (last and keep_resume):
                resume.save(t, progress)
            if stop.is_set():
                raise Preempted(f"model {spec['name']}, fold {fold}: stopped by SIGTERM after epoch "
                                f"{progress.epoch}; run again to continue from {resume.path}")
    t.net.load_state_dict(progress.best["state_dict"])  # a probe's head shares its modules with the model
    every_epoch = progress.dev_probas if len(progress.dev_probas) == progress.epoch else []
    dev_proba = cross_fitted(every_epoch, y_dev, n_classes, spec["cv_seed"])
    if dev_proba is None:  # no development split, or too small to halve, or resumed from an older resume.pt
        # the kept epoch's predictions (its weights, evaluated again: eval mode is deterministic)
        dev_proba = evaluate(t, split.dev, hp).numpy() if len(split.dev) else np.empty((0, n_classes))
    result = finish(t, data, split, spec, progress, (split.dev, dev_proba), out_dir, time.perf_counter() - started)
    if not keep_resume:
        discard_resume(out_dir)
    return result


def training_part(t: Trainer, data: TrainingData, split: Split) -> probe.Part:
    """The rows of the embeddings a head is fitted on (the training part's samples, or their windows)."""
    y = data.y.cpu().numpy()[split.fit]
    groups = None if data.groups is None else data.groups[split.fit]
    if t.parts is None:
        return probe.Part.of_samples(split.fit, y, groups)
    position = {r: i for i, r in enumerate(split.fit.tolist())}
    recording = np.array([position[r] for r in t.parts.view.recording[t.parts.fit].tolist()], dtype=np.int64)
    return probe.Part(t.parts.fit, recording, y, groups, t.parts.plan.aggregate)


def fit_head(t: Trainer, data: TrainingData, split: Split, spec: dict) -> tuple[Progress, np.ndarray]:
    """The model's head fitted (:meth:`deepself.models.base.Model.fit_head`: a probe's logistic regression, a
    rocket's ridge) on the whole training part; its progress and its cross-validated probabilities of the
    training part's recordings."""
    part, n_classes = training_part(t, data, split), len(data.classes)
    history, best, proba = t.model.fit_head(t.x, part, n_classes, balanced=spec["train"]["class_weights"],
                                            seed=spec["cv_seed"])
    return Progress(history, best), proba


def dev_halves(y_dev: np.ndarray, n_classes: int, seed: int) -> np.ndarray:
    """A stratified, seeded halving of the development split: True for the rows of the first half."""
    rng = np.random.default_rng(seed)
    half = np.zeros(len(y_dev), dtype=bool)
    start = 0
    for c in range(n_classes):  # each class alternates between the halves, from where the last one ended
        members = rng.permutation(np.flatnonzero(y_dev == c))
        half[members[start::2]] = True
        start = (start + len(members)) % 2
    return half


def cross_fitted(dev_probas: list, y_dev: np.ndarray, n_classes: int, seed: int) -> np.ndarray | None:
    """Development predictions that are out of sample for the choice of the epoch, by cross-fitting.

    The kept epoch is the best of many on the development split, so that split's predictions at
    that epoch look better than the model is (the more epochs, the smaller the split, the more so),
    while a fitted head's cross-validated predictions do not: a ``select`` fusion comparing the two
    would favour the network. So the split is halved (stratified, seeded), and each half's rows
    are the predictions of the epoch that the *other* half chooses (its first best UAR, as the
    kept epoch is chosen). None when there is no per-epoch record of every epoch or a half is empty.
    """
    if not dev_probas or len(y_dev) < 2:
        return None
    half = dev_halves(y_dev, n_classes, seed)
    if half.all() or not half.any():
        return None
    stack = torch.stack(dev_probas).numpy()  # epochs x dev x classes
    out = np.empty(stack.shape[1:], dtype=np.float64)
    for rows, chooser in ((half, ~half), (~half, half)):
        scores = [uar(y_dev[chooser], p[chooser].argmax(1), n_classes) for p in stack]
        out[rows] = stack[int(np.argmax(scores)), rows]
    return out


def train_fold(sheet_path: str | os.PathLike, store_path: str | os.PathLike, fold: str, spec: dict,
               out_dir: str | os.PathLike, **options) -> dict:
    """:func:`train_fold_on` the samples of ``sheet_path`` and ``store_path`` (read for this fold alone)."""
    return train_fold_on(TrainingData(sheet_path, store_path, spec["classes"]), fold, spec, out_dir, **options)
