"""Model registry: builders registered by name, built from the input geometry plus hyperparameters.

Every builder takes the same signal arguments first (``n_chans``, ``n_freqs``, ``n_times``,
``n_outputs``; ``n_freqs`` is None for 1-D input of shape (channels, time)), then its own
hyperparameters as keywords with defaults. Those keywords are the model's config keys: the
schema's ``args`` block of each arch lists exactly them, with the same defaults.
"""

from __future__ import annotations

import inspect
from typing import Callable

import torch
from torch import nn

from deepself.errors import DeepselfError

_MODELS: dict[str, Callable[..., nn.Module]] = {}
_INPUTS: dict[str, tuple[str, ...]] = {}
SIGNAL_ARGS = ("n_chans", "n_freqs", "n_times", "n_outputs")


def register_model(name: str, inputs: tuple[str, ...]):
    """Register a builder under ``name``; ``inputs`` lists the input kinds it accepts.

    "1d" is a store of signals (B, C, T); "2d" a store of feature maps or images (B, C, F, T).
    """

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


def hyperparameters(name: str) -> dict[str, object]:
    """The keyword hyperparameters of ``name`` and their defaults (the arch's config keys)."""
    params = inspect.signature(_MODELS[name]).parameters.values()
    return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


def create_model(name: str, /, n_chans: int, n_freqs: int | None, n_times: int, n_outputs: int,
                 **hyperparameters_) -> nn.Module:
    """Build model ``name`` for inputs (n_chans, [n_freqs,] n_times) and ``n_outputs`` classes.

    ``name`` is positional-only, so that an arch's own ``name`` key (a torchvision variant) can
    travel in ``hyperparameters_``.
    """
    if name not in _MODELS:
        raise DeepselfError(f"model arch {name!r} is unknown (known: {', '.join(list_models())})")
    kind = "1d" if n_freqs is None else "2d"
    if kind not in _INPUTS[name]:
        raise DeepselfError(
            f"model arch {name!r} takes {' or '.join(_INPUTS[name])} input, the feature is {kind} "
            f"({n_chans} channels x {'' if n_freqs is None else f'{n_freqs} x '}{n_times})"
        )
    known = hyperparameters(name)
    for key in hyperparameters_:
        if key not in known:
            raise DeepselfError(f"model args {key}: unknown key for arch {name} (known: {', '.join(known)})")
    return _MODELS[name](n_chans=n_chans, n_freqs=n_freqs, n_times=n_times, n_outputs=n_outputs,
                         **hyperparameters_)


ACTIVATIONS = {"relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU, "tanh": nn.Tanh, "leaky_relu": nn.LeakyReLU}


def per_layer(value, n: int, name: str) -> list:
    """One value for every layer, or a list of exactly one per layer."""
    if isinstance(value, (list, tuple)):
        if len(value) != n:
            raise DeepselfError(f"model args {name}: {len(value)} values for {n} layers")
        return list(value)
    return [value] * n


def classifier(n_in: int, n_outputs: int, hidden=(), activation: str = "relu", dropout: float = 0.0) -> nn.Sequential:
    """Dropout, then optional fully connected hidden layers, then the output layer."""
    layers: list[nn.Module] = [nn.Dropout(dropout)]
    for width in hidden:
        layers += [nn.Linear(n_in, width), ACTIVATIONS[activation](), nn.Dropout(dropout)]
        n_in = width
    layers.append(nn.Linear(n_in, n_outputs))
    return nn.Sequential(*layers)


def summary(model: nn.Module, input_shape: tuple[int, ...]) -> list[tuple[str, tuple[int, ...]]]:
    """Output shape of every leaf layer for one input of ``input_shape`` (without the batch axis).

    Recurrent layers return (output, state); their row shows the output sequence.
    """
    rows, hooks = [], []

    def record(module, inputs, output, name):
        if isinstance(output, (tuple, list)):
            output = output[0]
        rows.append((f"{name} ({type(module).__name__})", tuple(output.shape[1:])))

    for name, module in model.named_modules():
        if not list(module.children()):
            hooks.append(module.register_forward_hook(lambda m, i, o, name=name: record(m, i, o, name)))
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad():
            model(torch.zeros(1, *input_shape))
    finally:
        model.train(was_training)
        for h in hooks:
            h.remove()
    return rows
