"""The training loop's parts: :func:`set_up` builds the model, its optimiser and the one
:class:`~deepself.inference.Forward` that training, evaluation, the probe and prediction share;
:func:`train_epoch` and :func:`evaluate` run an epoch; :func:`record` keeps its history and best weights.
"""

from __future__ import annotations

import json
import logging
import os
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Callable

import numpy as np
import torch
from torch import nn

from deepself.inference import Forward, predict_proba, shape_text
from deepself.models import create_model, summary
from deepself.training import probe, windows
from deepself.training.augment import augment, mixup
from deepself.training.data import Split, TrainingData
from deepself.training.optim import build_optimizer, build_scheduler
from deepself.training.resume import Progress

if TYPE_CHECKING:
    from deepself.models.base import Model

log = logging.getLogger(__name__)


@dataclass
class Trainer:
    """What trains and on what: the model on the samples, or a probe's head on their embeddings."""

    model: Model
    model_args: dict
    net: nn.Module
    x: windows.Inputs  # the samples, their windows or a probe's embeddings: batches are x[index]
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
            fit_transform(model, x, split.windows.fit if split.windows else split.fit, forward, hp["seed"],
                          "recordings" if split.windows is None else "windows")
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


def fit_transform(model: Model, x: windows.Inputs, index: np.ndarray, forward: Forward, seed: int,
                  unit: str = "recordings") -> None:
    """Fit a rocket's transform on the inputs ``x[index]`` (the training part's ``unit``: recordings or windows)."""
    inputs = forward.inputs(x[torch.from_numpy(index)]).cpu()
    log.info("fitting %s on %d %s x %d channels x %d samples (aeon, random_state %d)",
             getattr(model, "label", type(model).__name__), len(inputs),
             unit, inputs.shape[1], inputs.shape[-1], seed)
    started = time.perf_counter()
    model.fit_features(inputs, seed=seed)
    log.info("transform fitted in %.1fs (aeon's numba functions compile on their first use, then load from numba's "
             "cache)", time.perf_counter() - started)


def embed_once(data: TrainingData, split: Split, spec: dict, model: Model, x: windows.Inputs,
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
        return predict_proba(t.net, t.x, t.forward, hp["batch_size"] * 4, rows=index)
    part = t.parts.of_recordings(index)
    proba = predict_proba(t.net, t.x, t.forward, hp["batch_size"] * 4, rows=part).numpy()
    return torch.from_numpy(t.parts.decide(proba, part, index)).float()


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
