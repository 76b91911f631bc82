"""Train one model on one cross-validation fold, keep the epoch with the best development UAR, predict.

The fold's held-out samples are never seen until the kept model predicts them: the development
split that chooses the epoch and the normalisation statistics both come from the training folds.
A head fitted on frozen features (``train_mode: probe``, MiniRocket, MultiRocket: :func:`fits_a_head`)
has no development split: it is fitted on the whole training part, and cross-validation over that
part chooses its hyperparameter (:mod:`deepself.probe`).

A job reads the sample sheet and the store once (:class:`TrainingData`), however many folds it
trains in turn (:func:`train_fold_on`). The loop reads top to bottom: :func:`set_up` builds the
model, its optimiser and the one :class:`~deepself.inference.Forward` that training, evaluation,
the probe and prediction share; :func:`train_epoch` and :func:`evaluate` run an epoch;
:class:`Resume` keeps the job's state in ``resume.pt`` so that a killed or pre-empted job that is
started again continues where it stopped and ends with the predictions an uninterrupted run gives;
:func:`write_outputs` writes the fold's files: besides the held-out fold's ``predictions.csv``,
``dev_predictions.csv``, the same columns for the samples the kept model was chosen on (the
development split's predictions, each half's from the epoch the other half chooses:
:func:`cross_fitted`; a fitted head's cross-validated, out-of-sample predictions of the whole
training part; no rows without a development split), which the ``select`` fusion learns from.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import signal
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Callable

import numpy as np
import pandas as pd
import torch
from torch import nn

from deepself import probe, windows
from deepself.augment import augment, mixup
from deepself.errors import DeepselfError
from deepself.inference import Forward, normalizer, predict_proba, shape_text
from deepself.io.sheet import read_sheet
from deepself.io.store import atomic_path, open_store
from deepself.metrics import uar
from deepself.models import create_model, summary

if TYPE_CHECKING:
    from deepself.models.base import Model

log = logging.getLogger(__name__)


# --- data --------------------------------------------------------------------------------------------

def fits_a_head(spec: dict) -> bool:
    """Whether ``spec``'s model is a head fitted on frozen features (``train_mode = "probe"``: a pretrained
    network's ``train_mode: probe`` arg, or a rocket's class), which needs no development split."""
    from deepself.models import registry

    return registry.fits_a_head(spec["arch"], spec["args"])


def dev_split(labels: np.ndarray, groups: np.ndarray | None, fraction: float, seed: int):
    """Indices (fit, dev) of a stratified, seeded split; grouped when groups are given; no dev at fraction 0."""
    if fraction == 0:  # cv.dev_fraction 0: train on everything, keep the last epoch
        return np.arange(len(labels)), np.array([], dtype=np.int64)
    # imported here, not at the top: scikit-learn takes a second to import, and only this needs it
    from sklearn.model_selection import StratifiedGroupKFold, StratifiedShuffleSplit

    index = np.zeros(len(labels))
    if groups is not None:
        n_splits = max(2, round(1 / fraction))
        splitter = StratifiedGroupKFold(n_splits=n_splits, shuffle=True, random_state=seed)
        return next(splitter.split(index, labels, groups))
    splitter = StratifiedShuffleSplit(n_splits=1, test_size=fraction, random_state=seed)
    try:
        return next(splitter.split(index, labels))
    except ValueError as err:
        raise DeepselfError(f"config key cv.dev_fraction: {fraction} cannot make a stratified split "
                            f"of {len(labels)} training samples ({err})") from None


@dataclass
class Split:
    """One fold's parts (indices into the job's samples) and the normalisation of its training part."""

    fold: str
    fit: np.ndarray
    dev: np.ndarray
    test: np.ndarray
    stats: dict
    windows: windows.Parts | None = None  # with ``windows:``, the fold's windows (fit, dev and test are recordings)


class TrainingData:
    """The samples of a training job, read once: inputs, labels, folds and groups of every sample.

    Parameters
    ----------
    sheet_path
        ``samples.csv`` (ids, labels, folds, groups).
    store_path
        The store the model learns from (a feature map, or the raw/filtered signals or images).
    classes
        The configured classes, or None for the sorted labels of the sheet.
    """

    def __init__(self, sheet_path: str | os.PathLike, store_path: str | os.PathLike, classes: list[str] | None):
        sheet = read_sheet(sheet_path)
        self.sheet_path, self.classes = sheet_path, classes or sorted(sheet["label"].unique())
        unknown = sheet[~sheet["label"].isin(self.classes)]
        if len(unknown):
            raise DeepselfError(f"{sheet_path}: sample {unknown['id'].iloc[0]!r} has label "
                                f"{unknown['label'].iloc[0]!r}, which is not a class ({', '.join(self.classes)})")
        self.ids, self.labels, self.folds = (sheet[c].to_numpy() for c in ("id", "label", "fold"))
        self.y = torch.from_numpy(np.array(sheet["label"].map({c: i for i, c in enumerate(self.classes)}),
                                           dtype=np.int64))
        grouped = "group" in sheet.columns and (sheet["group"] != "").all()
        self.groups = sheet["group"].to_numpy() if grouped else None
        with open_store(store_path) as store:
            self.x = torch.from_numpy(store.read(list(self.ids)))
            self.meta, fingerprint = store.meta, store.fingerprint
        # What a resumed run must find unchanged: the store's content and the sheet's assignment.
        sheet_digest = hashlib.sha256(sheet[[c for c in ("id", "label", "fold", "group") if c in sheet]]
                                      .to_csv(index=False).encode()).hexdigest()
        self.content = {"store": fingerprint, "sheet": sheet_digest}
        self.embeddings: dict[str, torch.Tensor] = {}  # a probe's, shared by the folds of the job

    def split(self, fold: str, spec: dict) -> Split:
        """Held-out ``fold``, and a development split of the other folds (``spec``'s dev fraction and seed;
        none for a head fitted on frozen features, :func:`fits_a_head`: its fit part is the whole training part)."""
        held_out = self.folds == str(fold)
        if not held_out.any():
            raise DeepselfError(f"{self.sheet_path}: fold {fold!r} has no samples")
        absent = sorted(set(self.classes) - set(self.labels[~held_out]))
        if absent:
            raise DeepselfError(f"{self.sheet_path}: fold {fold!r}: class {absent[0]!r} is absent from its "
                                "training part")
        pool = np.flatnonzero(~held_out)
        y = self.y.cpu().numpy()
        groups = None if self.groups is None else self.groups[pool]
        fraction = 0.0 if fits_a_head(spec) else spec["dev_fraction"]
        fit, dev = dev_split(y[pool], groups, fraction, spec["cv_seed"])
        if spec.get("windows"):  # recordings are split, then windowed: no recording crosses a boundary
            plan = windows.Plan.from_config(spec["windows"], windows.frame_rate(self.meta),
                                            key=f"models.{spec['name']}.windows")
            parts = windows.Parts.of_fold(self.x, self.y, pool[fit], pool[dev], np.flatnonzero(held_out), plan)
            stats = windows.normalizer(parts.view.subset(parts.fit), spec["train"]["normalize"], self.meta["layout"])
            return Split(str(fold), pool[fit], pool[dev], np.flatnonzero(held_out), stats, parts)
        stats = normalizer(self.x[pool[fit]].cpu().numpy(), spec["train"]["normalize"], self.meta["layout"])
        return Split(str(fold), pool[fit], pool[dev], np.flatnonzero(held_out), stats)

    def to(self, device: torch.device) -> None:
        """Move the inputs to the device once when they fit comfortably there, else pin them for fast copies."""
        if device.type != "cuda" or self.x.device == device:
            return
        free, _ = torch.cuda.mem_get_info(device)
        if self.x.element_size() * self.x.nelement() < 0.5 * free:
            self.x, self.y = self.x.to(device), self.y.to(device)
        elif not self.x.is_pinned():
            self.x, self.y = self.x.pin_memory(), self.y.pin_memory()


# --- set-up ------------------------------------------------------------------------------------------

def build_optimizer(model: nn.Module, hp: dict) -> torch.optim.Optimizer:
    """The optimiser of ``model`` (a :class:`Model`'s own parameter groups, or a probe's classifier's parameters)."""
    from deepself.models.base import Model

    params = model.parameter_groups(hp["lr"]) if isinstance(model, Model) else model.parameters()
    if hp["optimizer"] == "sgd":
        return torch.optim.SGD(params, lr=hp["lr"], momentum=hp["momentum"], nesterov=hp["nesterov"],
                               weight_decay=hp["weight_decay"])
    kind = torch.optim.AdamW if hp["optimizer"] == "adamw" else torch.optim.Adam
    return kind(params, lr=hp["lr"], weight_decay=hp["weight_decay"])


def build_scheduler(optimizer, hp: dict):
    if hp["scheduler"] == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, hp["step_size"], hp["gamma"])
    if hp["scheduler"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, hp["epochs"])
    if hp["scheduler"] == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, "max", hp["gamma"], hp["plateau_patience"])
    return None


@dataclass
class Trainer:
    """What trains and on what: the model on the samples, or a probe's head on their embeddings."""

    model: Model
    model_args: dict
    net: nn.Module
    x: torch.Tensor
    forward: Forward
    optimizer: torch.optim.Optimizer
    scheduler: object
    loss_fn: nn.Module
    step: Callable
    augment_layout: str | None
    generators: dict[str, torch.Generator] = field(default_factory=dict)
    parts: windows.Parts | None = None


def set_up(data: TrainingData, split: Split, spec: dict) -> Trainer:
    """The seeded model, its forward context, optimiser, schedule and loss, for the fold ``split``."""
    hp = spec["train"]
    torch.manual_seed(hp["seed"])
    shape = tuple((split.windows.view if split.windows else data.x).shape[1:])
    model_args = {"n_chans": shape[0], "n_freqs": shape[1] if len(shape) == 3 else None,
                  "n_times": shape[-1], "n_outputs": len(data.classes), **spec["args"]}
    log.info("model %s: arch %s on inputs of %s (%d training %s)", spec["name"], spec["arch"], shape_text(shape),
             len(split.fit), "recordings" if split.windows is None else f"recordings, {len(split.windows.fit)} windows")
    model = create_model(spec["arch"], **model_args)
    if model.fitted_transform:
        log.info("%s: aeon's numba functions compile on their first use in an environment (20-30 s each), then load "
                 "from numba's cache (%s)", getattr(model, "label", spec["arch"]),
                 os.environ.get("NUMBA_CACHE_DIR") or "__pycache__ beside aeon's sources")
    started = time.perf_counter()
    for layer, size in summary(model, shape):
        log.info("  %-48s -> %s", layer, size)
    if time.perf_counter() - started > 1.0:
        log.info("model summary (one forward pass of a zero input) in %.1fs", time.perf_counter() - started)
    forward = Forward.for_training(hp, split.stats, len(shape))
    forward.prepare(model)
    data.to(forward.device)
    net, x, augment_layout = model, split.windows.view if split.windows else data.x, data.meta["layout"]
    if model.fits_a_head:
        probe.check_augment(hp, spec["name"])
        if model.fitted_transform:  # a transform fitted to training data (the rockets): the training part only
            fit_transform(model, x, split.windows.fit if split.windows else split.fit, forward, hp["seed"])
        net, x = embed_once(data, split, spec, model, x, forward)
        forward, augment_layout = forward.without_normalization(), None
    optimizer = build_optimizer(net, hp)
    weight = None
    if hp["class_weights"]:
        counts = np.bincount(data.y[split.fit].cpu().numpy(), minlength=len(data.classes))
        weight = torch.tensor(len(split.fit) / (len(data.classes) * np.maximum(counts, 1)), dtype=torch.float32,
                              device=forward.device)
    generators = {"order": torch.Generator().manual_seed(hp["seed"]),
                  "augment": torch.Generator().manual_seed(hp["seed"] + 1)}
    return Trainer(model, model_args, net, x, forward, optimizer, build_scheduler(optimizer, hp),
                   nn.CrossEntropyLoss(weight=weight), torch.compile(net) if hp["compile"] else net,
                   augment_layout, generators, split.windows)


def fit_transform(model: Model, x, index: np.ndarray, forward: Forward, seed: int) -> None:
    """Fit a rocket's transform on the inputs ``x[index]`` (the training part's recordings or windows), logged."""
    inputs = forward.inputs(x[torch.from_numpy(index)]).cpu()
    log.info("fitting %s on %d %s x %d channels x %d samples (aeon, random_state %d)",
             getattr(model, "label", type(model).__name__), len(inputs),
             "windows" if isinstance(x, windows.Windows) else "recordings", inputs.shape[1], inputs.shape[-1], seed)
    started = time.perf_counter()
    model.fit_features(inputs, seed=seed)
    log.info("transform fitted in %.1fs (aeon's numba functions compile on their first use, then load from numba's "
             "cache)", time.perf_counter() - started)


def embed_once(data: TrainingData, split: Split, spec: dict, model: Model, x: torch.Tensor,
               forward: Forward) -> tuple[nn.Module, torch.Tensor]:
    """A probe's head and the embeddings of every sample, computed once per job where folds share them.

    A frozen backbone gives every fold the same embeddings unless the fold changes its input: a
    normalisation fitted on the fold's training part, a transform fitted to it (MiniRocket), or
    windows cut per split. Otherwise the folds of a job (``train.folds_per_job``) reuse them.
    """
    shared = split.stats["mode"] != "feature" and not model.fitted_transform and split.windows is None
    key = json.dumps([spec["arch"], spec["args"], split.stats["mode"]], sort_keys=True, default=str)
    if shared and key in data.embeddings:
        log.info("probe: the embeddings of an earlier fold of this job reused")
        return model.eval().get_classifier(), data.embeddings[key]
    what = "transform" if model.fitted_transform else "probe"
    head, embeddings = probe.embed(model, x, forward, spec["train"]["batch_size"] * 4, what)
    if shared:
        data.embeddings[key] = embeddings
    return head, embeddings


# --- one epoch ----------------------------------------------------------------------------------------

def train_epoch(t: Trainer, data: TrainingData, split: Split, hp: dict) -> float:
    """One pass over the fit part in a seeded random order; the mean training loss."""
    t.net.train()
    fit = torch.from_numpy(t.parts.fit if t.parts else split.fit)
    x, y = (t.parts.epoch_view(t.generators["augment"]), t.parts.y) if t.parts else (t.x, data.y)
    order = fit[torch.randperm(len(fit), generator=t.generators["order"])]
    total = torch.zeros((), device=t.forward.device)
    for i in range(0, len(order), hp["batch_size"]):
        batch = order[i : i + hp["batch_size"]]
        if len(batch) < 2 and len(order) > 1:
            continue  # a batch of one breaks batch norm and says little
        batch = batch.to(t.x.device)
        xb = augment(t.forward.normalized(x[batch]), t.augment_layout, hp["augment"], t.generators["augment"])
        target = y[batch].to(t.forward.device, non_blocking=True)
        if hp["augment"]["mixup"] > 0:
            xb, target = mixup(xb, nn.functional.one_hot(target, len(data.classes)).float(),
                               t.generators["augment"], hp["augment"]["mixup"])
        with t.forward.autocast():
            loss = t.loss_fn(t.step(t.forward.formatted(xb)).float(), target)
        t.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if hp["grad_clip"]:
            nn.utils.clip_grad_norm_(t.net.parameters(), hp["grad_clip"])
        t.optimizer.step()
        total += loss.detach() * len(batch)
    return float(total) / len(fit)


def evaluate(t: Trainer, index: np.ndarray, hp: dict) -> torch.Tensor:
    """Class probabilities of the samples ``index`` (the dev or held-out part) with the current weights.

    With windows, of the part's windows, aggregated per recording (in the order of ``index``).
    """
    if t.parts is None:
        return predict_proba(t.net, t.x[torch.from_numpy(index).to(t.x.device)], t.forward, hp["batch_size"] * 4)
    part = t.parts.of_recordings(index)
    x = t.x.subset(part) if isinstance(t.x, windows.Windows) else t.x[torch.from_numpy(part).to(t.x.device)]
    proba = predict_proba(t.net, x, t.forward, hp["batch_size"] * 4).numpy()
    return torch.from_numpy(t.parts.decide(proba, part, index)).float()


def scheduler_step(t: Trainer, dev_uar: float) -> None:
    if isinstance(t.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        t.scheduler.step(dev_uar)
    elif t.scheduler is not None:
        t.scheduler.step()


# --- resume ------------------------------------------------------------------------------------------

@dataclass
class Progress:
    """Where a fold's training stands: its history, the best epoch so far (with its weights), patience."""

    history: list = field(default_factory=list)
    best: dict = field(default_factory=lambda: {"dev_uar": -1.0, "epoch": 0})
    stale: int = 0
    dev_probas: list = field(default_factory=list)  # each epoch's development probabilities (float32 tensors)

    @property
    def epoch(self) -> int:
        return len(self.history)


class Resume:
    """``resume.pt``: the whole state of a fold's training, written on an interval and when asked to stop.

    Writing it costs time (about 180 MB for ResNet18 with Adam's state), so it is written when
    ``train.resume_every_s`` seconds have passed since the last write, and no sooner than 20 times
    the last write took (so that it never costs more than 5% of the training time, whatever the
    disk); after the last epoch when the job trains more folds after this one; and when the job
    receives SIGTERM. ``resume_every_s: 0`` writes it after every epoch.
    """

    def __init__(self, path: Path, identity: str, every_s: float):
        self.path, self.identity, self.every_s = path, identity, every_s
        self.last_write, self.write_seconds = time.monotonic(), 0.0

    def load(self, t: Trainer, epochs: int) -> Progress:
        """The progress stored in ``resume.pt`` (the trainer's state restored), or a fresh start."""
        if not self.path.exists():
            return Progress()
        state = torch.load(self.path, map_location="cpu", weights_only=True)
        if state["identity"] != self.identity:
            log.info("ignoring %s: it belongs to another run or to other data", self.path)
            return Progress()
        t.net.load_state_dict(state["model"])
        t.optimizer.load_state_dict(state["optimizer"])
        if t.scheduler is not None:
            t.scheduler.load_state_dict(state["scheduler"])
        torch.set_rng_state(state["rng"]["torch"])
        for name, generator in t.generators.items():
            generator.set_state(state["rng"][name])
        if "cuda" in state["rng"] and torch.cuda.is_available():
            torch.cuda.set_rng_state_all(state["rng"]["cuda"])
        log.info("resuming after epoch %d of %d (%s)", len(state["history"]), epochs, self.path)
        # an earlier deepself's resume.pt has no dev_probas: the kept epoch's dev predictions are written then
        return Progress(state["history"], state["best"], state["stale"], list(state.get("dev_probas", [])))

    def due(self) -> bool:
        waited = time.monotonic() - self.last_write
        return self.every_s == 0 or waited >= max(self.every_s, 20 * self.write_seconds)

    def save(self, t: Trainer, progress: Progress) -> None:
        started = time.monotonic()
        rng = {"torch": torch.get_rng_state(), **{k: g.get_state() for k, g in t.generators.items()}}
        if torch.cuda.is_available():
            rng["cuda"] = torch.cuda.get_rng_state_all()
        with atomic_path(self.path) as tmp:
            torch.save({"identity": self.identity, "model": t.net.state_dict(), "optimizer": t.optimizer.state_dict(),
                        "scheduler": t.scheduler.state_dict() if t.scheduler is not None else None, "rng": rng,
                        "history": progress.history, "best": progress.best, "stale": progress.stale,
                        "dev_probas": progress.dev_probas}, tmp)
        self.last_write = time.monotonic()
        self.write_seconds = self.last_write - started
        log.info("wrote %s after epoch %d in %.2fs", self.path.name, progress.epoch, self.write_seconds)


def resume_identity(spec: dict, fold: str, data: TrainingData) -> str:
    """Identity of a training run: a resume file of another run, or of other data, is never continued."""
    blob = json.dumps({"spec": spec, "fold": str(fold), "meta": data.meta, "content": data.content},
                      sort_keys=True, default=str)
    return hashlib.sha256(blob.encode()).hexdigest()


class Preempted(DeepselfError):
    """The job received SIGTERM; its state is in ``resume.pt`` and a rerun continues from there."""


@contextlib.contextmanager
def sigterm_requests_stop():
    """While inside, SIGTERM (what SLURM sends before pre-emption or a time limit) sets ``stop.is_set()``."""
    stop = threading.Event()
    if threading.current_thread() is not threading.main_thread():
        yield stop  # only the main thread may handle signals; elsewhere SIGTERM keeps its default
        return
    previous = signal.signal(signal.SIGTERM, lambda *_: stop.set())
    try:
        yield stop
    finally:
        signal.signal(signal.SIGTERM, previous)


# --- outputs -----------------------------------------------------------------------------------------

def predictions_frame(data: TrainingData, index: np.ndarray, fold: str, proba: np.ndarray, name: str) -> pd.DataFrame:
    """Rows ``id, fold, label, pred, p_<class>...`` of the samples ``index`` (``predictions.csv`` of the held-out
    fold, or ``dev_predictions.csv``); ``fold`` is the held-out fold of the model that predicted them.

    Refuses probabilities that are not finite, naming the sample. No samples: the header alone.
    """
    proba = np.asarray(proba, dtype=np.float64).reshape(len(index), len(data.classes))
    bad = ~np.isfinite(proba).all(axis=1)
    if bad.any():
        sample = data.ids[index][np.flatnonzero(bad)[0]]
        raise DeepselfError(f"model {name}, fold {fold}: sample {sample!r} (and {int(bad.sum()) - 1} more) "
                            "got non-finite probabilities; check its input for huge or non-finite values, or "
                            "lower train.lr")
    y = data.y.cpu().numpy()[np.asarray(index, dtype=np.int64)]
    frame = pd.DataFrame({"id": data.ids[index], "fold": fold, "label": [data.classes[i] for i in y],
                          "pred": [data.classes[i] for i in proba.argmax(1)]},
                         columns=["id", "fold", "label", "pred"])
    for c, label in enumerate(data.classes):
        frame[f"p_{label}"] = proba[:, c]
    return frame


def write_outputs(out_dir: Path, checkpoint: dict, history: list, result: dict, predictions: pd.DataFrame,
                  dev_predictions: pd.DataFrame) -> None:
    """The fold's files, each written whole or not at all."""
    with atomic_path(out_dir / "checkpoint.pt") as tmp:
        torch.save(checkpoint, tmp)
    with atomic_path(out_dir / "history.csv") as tmp:
        pd.DataFrame(history).to_csv(tmp, index=False)
    with atomic_path(out_dir / "summary.json") as tmp:
        tmp.write_text(json.dumps(result, indent=2))
    with atomic_path(out_dir / "dev_predictions.csv") as tmp:
        dev_predictions.to_csv(tmp, index=False)
    with atomic_path(out_dir / "predictions.csv") as tmp:
        predictions.to_csv(tmp, index=False)


# --- a fold, top to bottom ----------------------------------------------------------------------------

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


HEAD_KEYS = ("alpha", "temperature", "C", "cv")  # what a fitted head's best row says of its hyperparameters


def calibration(data: TrainingData, index: np.ndarray, proba: np.ndarray, what: str) -> dict:
    """``<what>_log_loss`` and ``<what>_mean_top_probability`` of the samples ``index`` (None without samples)."""
    y = data.y.cpu().numpy()[np.asarray(index, dtype=np.int64)]
    _, loss, top = probe.scores(y, np.asarray(proba).reshape(len(y), len(data.classes)), len(data.classes))
    return {f"{what}_log_loss": None if not len(y) else loss, f"{what}_mean_top_probability": None if not len(y) else top}


def finish(t: Trainer, data: TrainingData, split: Split, spec: dict, progress: Progress,
           dev: tuple[np.ndarray, np.ndarray], out_dir: Path, seconds: float) -> dict:
    """Predict the held-out fold with the kept weights, write the fold's files; its summary.

    ``dev`` is (samples, probabilities) of ``dev_predictions.csv``: the development split at the
    kept epoch, or a fitted head's cross-validated predictions of the training part.
    """
    proba = evaluate(t, split.test, spec["train"]).numpy()
    predictions = predictions_frame(data, split.test, split.fold, proba, spec["name"])
    dev_predictions = predictions_frame(data, dev[0], split.fold, dev[1], spec["name"])
    y_test, best = data.y[split.test].cpu().numpy(), progress.best
    head = {key: best[key] for key in HEAD_KEYS if key in best}
    result = {"model": spec["name"], "fold": split.fold, "best_epoch": best["epoch"], "dev_uar": best["dev_uar"],
              "test_uar": uar(y_test, proba.argmax(1), len(data.classes)), "epochs_run": progress.epoch,
              **calibration(data, *dev, "dev"), **calibration(data, split.test, proba, "test"),
              **({"head": head} if head else {}), "n_train": len(split.fit), "n_dev": len(split.dev),
              "n_dev_predictions": len(dev[0]), "n_test": len(split.test),
              "device": str(t.forward.device), "precision": t.forward.precision, "seconds": seconds}
    checkpoint = {"model": spec["arch"], "model_args": t.model_args, "feature": spec["feature"],
                  "store_meta": data.meta, "classes": data.classes, "normalize": split.stats, "train": spec["train"],
                  "fold": split.fold, "best_epoch": best["epoch"], "dev_uar": best["dev_uar"], "head": head or None,
                  "windows": split.windows.plan.to_json() if split.windows else None,
                  "state_dict": {k: v.detach().cpu() for k, v in t.model.state_dict().items()}}
    write_outputs(out_dir, checkpoint, progress.history, result, predictions, dev_predictions)
    if head:
        log.info("fold %s: head %s chosen by cross-validation over the training part (%d of %d tried), "
                 "cross-validated UAR %.4f, held-out UAR %.4f", split.fold, _head_text(head), best["epoch"],
                 progress.epoch, best["dev_uar"], result["test_uar"])
    else:
        log.info("fold %s: best epoch %d of %d, dev UAR %.4f, held-out UAR %.4f", split.fold, best["epoch"],
                 progress.epoch, best["dev_uar"], result["test_uar"])
    log.info("fold %s: %s predictions (%d): log-loss %s, mean top probability %s; held-out: log-loss %.4f, mean top "
             "probability %.3f", split.fold, "cross-validated" if head else "development", len(dev[0]),
             _number(result["dev_log_loss"]), _number(result["dev_mean_top_probability"]), result["test_log_loss"],
             result["test_mean_top_probability"])
    return result


def _head_text(head: dict) -> str:
    """``alpha 0.001, T 0.41`` or ``C 0.1``: a fitted head's hyperparameters."""
    names = {"alpha": "alpha", "temperature": "T", "C": "C"}
    return ", ".join(f"{names[key]} {head[key]:.4g}" for key in names if key in head)


def _number(value: float | None) -> str:
    return "none" if value is None else f"{value:.4f}"


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


def record(progress: Progress, t: Trainer, loss: float, p_dev: torch.Tensor | None, y_dev: np.ndarray,
           dev_uar: float, seconds: float, n_fit: int, hp: dict) -> None:
    """Add an epoch to the history, log it, and keep its weights when its development UAR is the best
    (without a development split, ``p_dev`` None: every epoch, so the last one is kept)."""
    dev_loss = (float("nan") if p_dev is None
                else float(nn.functional.nll_loss(torch.log(p_dev.clamp_min(1e-12)), torch.from_numpy(y_dev))))
    lr = t.optimizer.param_groups[0]["lr"]
    epoch = progress.epoch + 1
    progress.history.append({"epoch": epoch, "train_loss": loss, "dev_loss": dev_loss, "dev_uar": dev_uar,
                             "lr": lr, "seconds": seconds, "samples_per_s": n_fit / seconds})
    if p_dev is not None:
        progress.dev_probas.append(p_dev.detach().cpu().float().clone())
    log.info("epoch %3d/%d  loss %.4f  dev loss %.4f  dev UAR %.4f  lr %.2g  %.0f samples/s  %.2fs", epoch,
             hp["epochs"], loss, dev_loss, dev_uar, lr, n_fit / seconds, seconds)
    if p_dev is None or dev_uar > progress.best["dev_uar"]:
        progress.best = {"dev_uar": dev_uar, "epoch": epoch,
                         "state_dict": {k: v.detach().cpu().clone() for k, v in t.net.state_dict().items()}}
        progress.stale = 0
    else:
        progress.stale += 1


def train_fold(sheet_path: str | os.PathLike, store_path: str | os.PathLike, fold: str, spec: dict,
               out_dir: str | os.PathLike, **options) -> dict:
    """:func:`train_fold_on` the samples of ``sheet_path`` and ``store_path`` (read for this fold alone)."""
    return train_fold_on(TrainingData(sheet_path, store_path, spec["classes"]), fold, spec, out_dir, **options)


def discard_resume(out_dir: str | os.PathLike) -> None:
    """Remove a fold's ``resume.pt`` (there is none after :func:`train_fold_on` but with ``keep_resume``)."""
    with contextlib.suppress(FileNotFoundError):
        (Path(out_dir) / "resume.pt").unlink()
