"""Model registry: builders registered by name, built from the input geometry plus hyperparameters.

Every builder takes the same signal arguments first (``n_chans``, ``n_freqs``, ``n_times``,
``n_outputs``; ``n_freqs`` is None for 1-D input of shape (channels, time)), then its own
hyperparameters as keywords with defaults.
"""

from __future__ import annotations

from typing import Callable

import torch
from torch import nn

from deepself.errors import DeepselfError

_MODELS: dict[str, Callable[..., nn.Module]] = {}
_INPUTS: dict[str, tuple[str, ...]] = {}


def register_model(name: str, inputs: tuple[str, ...]):
    """Register a builder under ``name``; ``inputs`` lists the input kinds it accepts ("1d", "2d")."""

    def decorate(builder):
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        _MODELS[name] = builder
        _INPUTS[name] = inputs
        return builder

    return decorate


def list_models() -> list[str]:
    return sorted(_MODELS)


def model_inputs(name: str) -> tuple[str, ...]:
    return _INPUTS[name]


def create_model(name: str, n_chans: int, n_freqs: int | None, n_times: int, n_outputs: int,
                 **hyperparameters) -> nn.Module:
    """Build model ``name`` for inputs (n_chans, [n_freqs,] n_times) and ``n_outputs`` classes."""
    if name not in _MODELS:
        raise DeepselfError(f"model arch {name!r} is unknown (known: {', '.join(list_models())})")
    kind = "1d" if n_freqs is None else "2d"
    if kind not in _INPUTS[name]:
        raise DeepselfError(
            f"model arch {name!r} takes {' or '.join(_INPUTS[name])} input, the feature is {kind} "
            f"({n_chans} channels x {'' if n_freqs is None else f'{n_freqs} x '}{n_times})"
        )
    return _MODELS[name](n_chans=n_chans, n_freqs=n_freqs, n_times=n_times, n_outputs=n_outputs,
                         **hyperparameters)


ACTIVATIONS = {"relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU, "tanh": nn.Tanh, "leaky_relu": nn.LeakyReLU}


def per_layer(value, n: int, name: str) -> list:
    """One value for every layer, or a list of exactly one per layer."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise DeepselfError(f"model args {name}: {len(value)} values for {n} layers")
        return list(value)
    return [value] * n


def summary(model: nn.Module, input_shape: tuple[int, ...]) -> list[tuple[str, tuple[int, ...]]]:
    """Output shape of every leaf layer for one input of ``input_shape`` (without the batch axis)."""
    rows, hooks = [], []
    for name, module in model.named_modules():
        if not list(module.children()):
            hooks.append(module.register_forward_hook(
                lambda m, i, o, name=name: rows.append((f"{name} ({type(m).__name__})", tuple(o.shape[1:])))))
    was_training = model.training
    model.eval()
    with torch.no_grad():
        model(torch.zeros(1, *input_shape))
    model.train(was_training)
    for h in hooks:
        h.remove()
    return rows
