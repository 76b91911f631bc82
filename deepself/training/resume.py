"""Resuming a fold's training: ``resume.pt`` (:class:`Resume`), its identity, and SIGTERM as a request to stop.

A killed or pre-empted job that is started again continues where it stopped and ends with the
predictions an uninterrupted run gives.
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
from typing import TYPE_CHECKING

import torch

from deepself.errors import DeepselfError
from deepself.io.atomic import atomic_path

if TYPE_CHECKING:
    from deepself.training.data import TrainingData
    from deepself.training.loop import Trainer

log = logging.getLogger(__name__)


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


def discard_resume(out_dir: str | os.PathLike) -> None:
    """Remove a fold's ``resume.pt`` (there is none after :func:`deepself.training.fold.train_fold_on` but with ``keep_resume``)."""
    with contextlib.suppress(FileNotFoundError):
        (Path(out_dir) / "resume.pt").unlink()
