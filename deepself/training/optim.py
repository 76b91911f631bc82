"""The optimiser and the learning-rate schedule of a fold's training (``train.optimizer``, ``train.scheduler``)."""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn

if TYPE_CHECKING:
    from deepself.training.loop import Trainer


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
    """The schedule ``train.scheduler`` names (``step``, ``cosine``, ``plateau``), or None."""
    if hp["scheduler"] == "step":
        return torch.optim.lr_scheduler.StepLR(optimizer, hp["step_size"], hp["gamma"])
    if hp["scheduler"] == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(optimizer, hp["epochs"])
    if hp["scheduler"] == "plateau":
        return torch.optim.lr_scheduler.ReduceLROnPlateau(optimizer, "max", hp["gamma"], hp["plateau_patience"])
    return None


def scheduler_step(t: Trainer, dev_uar: float) -> None:
    """Step the schedule after an epoch (``plateau`` on the development UAR)."""
    if isinstance(t.scheduler, torch.optim.lr_scheduler.ReduceLROnPlateau):
        t.scheduler.step(dev_uar)
    elif t.scheduler is not None:
        t.scheduler.step()
