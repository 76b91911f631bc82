"""Inference shared by training, ``predict`` and ``export``: checkpoints, normalisation, one forward context.

A trained model is a checkpoint (:func:`load_checkpoint`, :func:`build_model`); every input it
sees goes through one :class:`Forward`: moved to the device, normalised with the statistics of the
training part, put in the memory format, run under the precision's autocast. Training, its
development evaluation, the probe's embedding pass, ``predict`` and ``export``'s check all use it,
so what a model saw in training is what it sees afterwards.
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from torch import nn

from deepself.errors import DeepselfError
from deepself.torchfile import load_tensors

CHECKPOINT_KEYS = ("model", "model_args", "store_meta", "classes", "normalize", "state_dict")

# Axes that normalisation statistics are pooled over, per store layout (axis 0 = samples):
# one mean per channel (and per frequency bin for maps).
_POOLED_AXES = {"CT": (0, 2), "CFT": (0, 3), "CHW": (0, 2, 3)}


# --- normalisation -----------------------------------------------------------------------------------

def pooled_axes(layout: str) -> tuple[int, ...]:
    """The axes (samples first) that ``feature`` normalisation pools its statistics over, for a store ``layout``."""
    return _POOLED_AXES[layout]


def normalizer(x: np.ndarray, mode: str, layout: str) -> dict:
    """Statistics of the training part ``x``; applied to every part with :func:`normalize`.

    Parameters
    ----------
    x
        The training inputs, samples first.
    mode
        ``none``, ``sample`` (each sample on its own) or ``feature`` (a mean and standard deviation
        per channel, and per frequency bin for maps, over the training part).
    layout
        The store's layout: ``CT``, ``CFT`` or ``CHW``.
    """
    if mode != "feature":
        return {"mode": mode}
    axes = _POOLED_AXES[layout]
    mean = x.mean(axis=axes, keepdims=True, dtype=np.float64)[0]
    std = x.std(axis=axes, keepdims=True, dtype=np.float64)[0]
    return {"mode": mode, "mean": torch.tensor(mean, dtype=torch.float32),
            "std": torch.tensor(np.maximum(std, 1e-8), dtype=torch.float32)}


def normalize(x: torch.Tensor, stats: dict) -> torch.Tensor:
    """``x`` normalised as :func:`normalizer`'s ``stats`` say (``mode`` none: unchanged)."""
    if stats["mode"] == "feature":
        return (x - stats["mean"].to(x.device)) / stats["std"].to(x.device)
    if stats["mode"] == "sample":
        axes = tuple(range(1, x.ndim))
        return (x - x.mean(axes, keepdim=True)) / x.std(axes, keepdim=True).clamp_min(1e-8)
    return x


# --- the forward context ----------------------------------------------------------------------------

def pick_device(choice: str) -> torch.device:
    """``auto``: CUDA when there is one, else the CPU; ``cuda`` without one is refused."""
    if choice == "cuda" and not torch.cuda.is_available():
        raise DeepselfError("config key train.device: cuda, but no CUDA device is available")
    if choice == "auto":
        choice = "cuda" if torch.cuda.is_available() else "cpu"
    return torch.device(choice)


def autocast_dtype(precision: str, device: torch.device) -> torch.dtype | None:
    """bf16 when asked, or under ``auto`` on CUDA devices that support it; None means plain fp32."""
    if precision == "bf16" or (precision == "auto" and device.type == "cuda" and torch.cuda.is_bf16_supported()):
        return torch.bfloat16
    return None


@dataclass
class Forward:
    """How inputs reach a model: device, normalisation, memory format and autocast, built once.

    Parameters
    ----------
    device
        Where the model and its inputs are.
    stats
        Normalisation statistics (:func:`normalizer`); ``{"mode": "none"}`` leaves inputs as they are.
    dtype
        The autocast dtype (bf16), or None for plain fp32.
    channels_last
        Feed 4-D inputs (2-D maps with channels) in the channels-last memory format.
    """

    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    stats: dict = field(default_factory=lambda: {"mode": "none"})
    dtype: torch.dtype | None = None
    channels_last: bool = False

    @classmethod
    def for_training(cls, hp: dict, stats: dict, n_dims: int) -> Forward:
        """The context of the ``train`` settings ``hp`` for inputs of ``n_dims`` axes (without the batch).

        ``channels_last: true`` uses the channels-last memory format for maps (2-D models) on any
        device: on CUDA it is what bf16 convolutions want, and on the 2-core CPU a
        ResNet18 training step on 1 x 64 x 108 maps was 12% faster with it at one thread and 11% at
        two (benchmarks/README.md). ``false`` keeps the contiguous format.
        """
        device = pick_device(hp["device"])
        channels_last = n_dims == 3 and hp["channels_last"]
        return cls(device, stats, autocast_dtype(hp["precision"], device), channels_last)

    @property
    def memory_format(self) -> torch.memory_format:
        return torch.channels_last if self.channels_last else torch.contiguous_format

    @property
    def precision(self) -> str:
        return "bf16" if self.dtype is not None else "fp32"

    def inputs(self, x: torch.Tensor) -> torch.Tensor:
        """A batch as the model takes it: on the device, normalised, in the memory format."""
        return self.formatted(self.normalized(x))

    def normalized(self, x: torch.Tensor) -> torch.Tensor:
        """A batch on the device, normalised (training augments it before :meth:`formatted`)."""
        return normalize(x.to(self.device, non_blocking=True), self.stats)

    def formatted(self, x: torch.Tensor) -> torch.Tensor:
        """A batch in the memory format of the model (maps only; other inputs unchanged)."""
        return x.contiguous(memory_format=self.memory_format) if x.ndim == 4 else x

    def autocast(self) -> contextlib.AbstractContextManager:
        if self.dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(self.device.type, dtype=self.dtype)

    def prepare(self, model: nn.Module) -> nn.Module:
        """``model`` on the device, in the memory format of its inputs."""
        return model.to(self.device, memory_format=self.memory_format)

    def without_normalization(self) -> Forward:
        """The same context for inputs that are already normalised (a probe's embeddings)."""
        return Forward(self.device, {"mode": "none"}, self.dtype, False)


@torch.no_grad()
def predict_proba(model: nn.Module, x, forward: Forward, batch_size: int,
                  rows: np.ndarray | None = None) -> torch.Tensor:
    """Class probabilities (float32, on the CPU) of the inputs ``x``, in batches, in eval mode.

    ``x`` is a tensor or anything indexed as one (:class:`deepself.training.windows.Inputs`);
    ``rows``: only those inputs, in that order, taken batch by batch (all of them when None).
    """
    model.eval()
    out = []
    for i in range(0, len(x) if rows is None else len(rows), batch_size):
        batch = slice(i, i + batch_size) if rows is None else torch.from_numpy(rows[i : i + batch_size]).to(x.device)
        with forward.autocast():
            logits = model(forward.inputs(x[batch]))
        out.append(torch.softmax(logits.float(), dim=1))
    return torch.cat(out).cpu() if out else torch.empty(0)


# --- checkpoints ------------------------------------------------------------------------------------

def load_checkpoint(path: str | os.PathLike) -> dict:
    """Read a ``checkpoint.pt`` written by :func:`deepself.training.fold.train_fold` (``weights_only=True``).

    Raises
    ------
    DeepselfError
        If the file is missing, not a torch file, holds code (refused by ``weights_only``), or
        lacks a key of :data:`CHECKPOINT_KEYS`.
    """
    path = Path(path)
    if not path.is_file():
        raise DeepselfError(f"{path}: no such checkpoint file")
    checkpoint = load_tensors(path, f"{path}: not a readable deepself checkpoint")
    if not isinstance(checkpoint, dict):
        raise DeepselfError(f"{path}: not a deepself checkpoint (holds a {type(checkpoint).__name__}, not a dict)")
    missing = [key for key in CHECKPOINT_KEYS if key not in checkpoint]
    if missing:
        raise DeepselfError(f"{path}: not a deepself checkpoint (no {missing[0]!r}; a checkpoint has "
                            f"{', '.join(CHECKPOINT_KEYS)})")
    return checkpoint


def input_shape(checkpoint: dict) -> tuple[int, ...]:
    """Shape of one input of the checkpoint's model: (channels, time) or (channels, rows, columns)."""
    args = checkpoint["model_args"]
    if args.get("n_freqs") is None:
        return (int(args["n_chans"]), int(args["n_times"]))
    return (int(args["n_chans"]), int(args["n_freqs"]), int(args["n_times"]))


def shape_text(shape) -> str:
    """``2 x 64 x 216``: a shape as messages give it."""
    return " x ".join(str(int(d)) for d in shape)


def build_model(checkpoint: dict, path: str | os.PathLike) -> nn.Module:
    """The checkpoint's model with its trained weights, in eval mode.

    Pretrained architectures are built without their original weights (``weights: null``): the
    state dict replaces every parameter, and predicting must not download or need the file. The
    model's family says what else rebuilding takes, or why it cannot
    (:func:`deepself.models.registry.rebuild_args`).
    """
    from deepself.models import create_model, list_models
    from deepself.models.registry import rebuild_args

    arch = checkpoint["model"]
    if arch not in list_models():
        raise DeepselfError(f"{path}: model arch {arch!r} is unknown (known: {', '.join(list_models())})")
    try:
        args = rebuild_args(arch, checkpoint["model_args"])
        model = create_model(arch, **args)
    except DeepselfError as err:
        raise DeepselfError(f"{path}: cannot rebuild its model: {err}") from None
    try:
        model.load_state_dict(checkpoint["state_dict"])
    except (RuntimeError, KeyError, TypeError, AttributeError) as err:
        detail = " ".join(line.strip() for line in str(err).splitlines() if line.strip())
        raise DeepselfError(f"{path}: its state_dict does not fit the {arch} model its model_args describe "
                            f"(input {shape_text(input_shape(checkpoint))}): {detail[:400]}") from None
    return model.eval()


def checkpoint_forward(checkpoint: dict) -> Forward:
    """The forward context of a checkpoint's model for inference on the CPU, fp32."""
    return Forward(stats=checkpoint["normalize"])
