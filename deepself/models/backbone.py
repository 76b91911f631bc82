"""What every pretrained network shares: reading weight files, adapting the first layer, the declared
embedding and head (``forward_features`` / ``forward_head``, as in timm), and how the backbone
trains (fine-tuned, frozen, at a smaller learning rate, or probed).

A weights file is read with ``torch.load(..., weights_only=True)`` (:func:`deepself.torchfile.load_tensors`);
it may hold a state dict or ``{"model": state_dict}`` (the PANNs release) or ``{"state_dict": state_dict}``
(a deepself checkpoint). A file downloaded by torchvision and a file given as a path take the same
:func:`load_weights` path.
"""

from __future__ import annotations

import logging
import os
from collections import Counter
from pathlib import Path
from typing import Literal

import torch
from torch import nn
from torch.nn.modules.batchnorm import _BatchNorm

from deepself.errors import DeepselfError
from deepself.models.base import Model
from deepself.models.registry import share_docs
from deepself.torchfile import load_tensors

log = logging.getLogger(__name__)

TRAIN_MODES = ("finetune", "freeze", "lower_lr", "probe")
TrainMode = Literal[TRAIN_MODES]

share_docs("""
weights
    Pretrained weights: null or none (random initialisation); DEFAULT (the official download into torch's
    cache, $TORCH_HOME/hub/checkpoints; torchvision also takes a weights enum name such as IMAGENET1K_V1;
    panns has no download); or the path of a local file (a state dict, or {"model": state_dict} as the PANNs
    release), for machines without internet.
keep_head
    Keep the pretrained head (ImageNet's 1000 or AudioSet's 527 outputs) instead of a new one for the task's
    classes.
train_mode
    finetune (train everything), freeze (train the head only; the backbone's batch norm keeps its
    statistics), lower_lr (the backbone at lr * backbone_lr_scale), probe (the backbone, in eval mode, embeds
    every sample once; only the head trains, on the embeddings: fast, but input augmentation cannot apply).
backbone_lr_scale
    Learning-rate factor of the backbone when train_mode is lower_lr.
""")


def no_weights(weights) -> bool:
    """True for ``weights: null`` or ``weights: none`` (random initialisation)."""
    return weights is None or (isinstance(weights, str) and weights.lower() == "none")


def read_state_dict(path: str | os.PathLike, model: str, where: str = "") -> dict[str, torch.Tensor]:
    """The state dict in a weights file; ``model`` and ``where`` (how to get the file) go into errors."""
    path = Path(path).expanduser()
    hint = f"; {where}" if where else ""
    if not path.is_file():
        raise DeepselfError(f"model args weights: {model} needs the weights file {path}, which does not exist{hint}")
    obj = load_tensors(path, f"model args weights: {path} is not a readable weights file for {model}")
    return unwrap_state_dict(obj, f"{path}", model)


def unwrap_state_dict(obj, source: str, model: str) -> dict[str, torch.Tensor]:
    """A state dict from what a weights file holds (see the module docstring)."""
    if isinstance(obj, dict):
        for key in ("state_dict", "model"):
            if isinstance(obj.get(key), dict):
                obj = obj[key]
                break
    if not isinstance(obj, dict) or not obj or not all(isinstance(v, torch.Tensor) for v in obj.values()):
        raise DeepselfError(f"model args weights: {source} holds no state dict of tensors for {model}")
    return dict(obj)


def _groups(keys) -> str:
    """'conv_block1 (10), fc1 (2)': keys counted by their top-level module."""
    counts = Counter(k.split(".")[0] for k in keys)
    return ", ".join(f"{name} ({n})" for name, n in counts.items()) or "nothing"


def load_weights(module: nn.Module, state: dict[str, torch.Tensor], source: str, model: str, *,
                 ignore: tuple[str, ...] = (), optional: tuple[str, ...] = ()) -> list[str]:
    """Copy ``state`` into ``module`` and log what was loaded and what kept its initial values.

    Parameters
    ----------
    ignore
        Key prefixes of the file that are dropped (e.g. a feature extractor the model does not have).
    optional
        Key prefixes of the module that the file may lack (a partial checkpoint): they keep their
        initial values. Every other key must be in the file, with the same shape.

    Returns
    -------
    list of str
        The keys that were loaded.
    """
    state = {k: v for k, v in state.items() if not k.startswith(ignore)}
    own = module.state_dict()
    unexpected = sorted(set(state) - set(own))
    missing = [k for k in own if k not in state and not k.endswith("num_batches_tracked")]
    required = [k for k in missing if not k.startswith(optional)]
    if unexpected or required:
        what = (f"{len(unexpected)} unknown keys ({', '.join(unexpected[:3])}{', ...' if len(unexpected) > 3 else ''})"
                if unexpected else "")
        what += "; " if unexpected and required else ""
        what += (f"{len(required)} keys missing ({', '.join(required[:3])}{', ...' if len(required) > 3 else ''})"
                 if required else "")
        raise DeepselfError(f"model args weights: {source} does not fit {model}: {what}")
    wrong = [f"{k} {tuple(v.shape)} in the file, {tuple(own[k].shape)} in the model"
             for k, v in state.items() if v.shape != own[k].shape]
    if wrong:
        raise DeepselfError(f"model args weights: {source} does not fit {model}: {'; '.join(wrong[:3])}")
    module.load_state_dict(state, strict=False)
    log.info("%s: loaded %s from %s", model, _groups(state), source)
    if missing:
        log.info("%s: not in the file, initial values kept: %s", model, _groups(missing))
    return sorted(state)


def adapt_conv(conv: nn.Conv2d, n_chans: int) -> nn.Conv2d:
    """The first convolution for ``n_chans`` input channels, from one made for RGB (or any count).

    The weights are summed over the original input channels and shared evenly among the new ones,
    so that a map repeated on every channel gives the same response as the summed filter: for one
    channel that is the sum over RGB; for C channels each gets sum / C.
    """
    if conv.in_channels == n_chans:
        return conv
    new = nn.Conv2d(n_chans, conv.out_channels, conv.kernel_size, conv.stride, conv.padding, conv.dilation,
                    conv.groups, conv.bias is not None, conv.padding_mode)
    with torch.no_grad():
        new.weight.copy_(conv.weight.sum(1, keepdim=True).repeat(1, n_chans, 1, 1) / n_chans)
        if conv.bias is not None:
            new.bias.copy_(conv.bias)
    return new


def set_submodule(root: nn.Module, name: str, new: nn.Module) -> None:
    parent, _, leaf = name.rpartition(".")
    setattr(root.get_submodule(parent) if parent else root, leaf, new)


class PretrainedNet(Model):
    """Base of networks with a (possibly pretrained) backbone and a head, declared as timm declares them.

    A family implements :meth:`forward_features` (input -> embedding (B, D): the backbone with its
    own readout or pooling) and :meth:`forward_head` (embedding -> logits; ``pre_logits=True``
    stops before the last linear layer, :meth:`get_classifier`), and names the modules of its
    head in ``head_names``. ``forward`` is the two in turn (:class:`deepself.models.base.Model`),
    so a probe and the network compute the same function. Nothing is guessed from the module tree
    and nothing is swapped during a forward pass.

    ``train_mode``: ``finetune`` trains everything at the trainer's learning rate; ``freeze``
    trains the head only (the backbone's parameters have ``requires_grad`` False and its batch
    norm layers keep their statistics); ``lower_lr`` trains the backbone at ``lr *
    backbone_lr_scale``; ``probe`` embeds every sample once with the frozen backbone (in eval
    mode) and fits the classifier on the embeddings (:mod:`deepself.training.probe`). The trainer asks
    :meth:`parameter_groups` for the optimiser's groups.
    """

    # Submodules after the embedding, the last of them holding the classifier (a family sets it).
    head_names: tuple[str, ...] = ()
    backbone_lr_scale = 1.0

    def set_train_mode(self, train_mode: str, backbone_lr_scale: float) -> None:
        if train_mode not in TRAIN_MODES:
            raise DeepselfError(f"model args train_mode: {train_mode!r} is not one of {list(TRAIN_MODES)}")
        if backbone_lr_scale < 0:
            raise DeepselfError(f"model args backbone_lr_scale: {backbone_lr_scale} is negative")
        self.train_mode, self.backbone_lr_scale = train_mode, backbone_lr_scale
        if train_mode in ("freeze", "probe"):
            for p in self.backbone_parameters():
                p.requires_grad_(False)

    def head_parameters(self) -> list[nn.Parameter]:
        return [p for name in self.head_names for p in self.get_submodule(name).parameters()]

    def backbone_parameters(self) -> list[nn.Parameter]:
        head = {id(p) for p in self.head_parameters()}
        return [p for p in self.parameters() if id(p) not in head]

    def parameter_groups(self, lr: float) -> list[dict]:
        """Optimiser parameter groups for base learning rate ``lr``, as ``train_mode`` says."""
        if self.train_mode == "finetune":
            return [{"params": list(self.parameters()), "lr": lr}]
        if self.train_mode in ("freeze", "probe"):
            return [{"params": self.head_parameters(), "lr": lr}]
        return [{"params": self.backbone_parameters(), "lr": lr * self.backbone_lr_scale},
                {"params": self.head_parameters(), "lr": lr}]

    def train(self, mode: bool = True):
        super().train(mode)
        if mode and self.train_mode in ("freeze", "probe"):
            head = {m for name in self.head_names for m in self.get_submodule(name).modules()}
            for m in self.modules():
                if isinstance(m, _BatchNorm) and m not in head:
                    m.eval()
        return self
