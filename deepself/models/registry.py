"""Model registry: builders registered by name, built from the input geometry plus hyperparameters.

Every builder takes the same signal arguments first (``n_chans``, ``n_freqs``, ``n_times``,
``n_outputs``; ``n_freqs`` is None for 1-D input of shape (channels, time)), then its own
hyperparameters as keywords with defaults. Those keywords are the model's config keys, and the
builder's signature is their one source: their types (annotations; bounds the type cannot say are
:class:`Range` and :class:`Length` in ``Annotated``), defaults, and descriptions (the docstring's
numpydoc ``Parameters``) make the schema's ``args`` block of each arch and the tables of
deepself/models/README.md and config/README.md (:mod:`deepself.models.schema_gen`, ``deepself
config-doc``). A description several builders share is written once (:func:`share_docs`) and
put in each docstring by its ``%(key)s`` line when the builder is registered.
"""

from __future__ import annotations

import inspect
import re
from dataclasses import dataclass
from typing import Annotated, Callable, Literal

import torch
from torch import nn

from deepself.errors import DeepselfError

_MODELS: dict[str, Callable[..., nn.Module]] = {}
_INPUTS: dict[str, tuple[str, ...]] = {}
_REBUILD: dict[str, Callable[[dict], dict]] = {}
_SHARED_DOCS: dict[str, str] = {}
SIGNAL_ARGS = ("n_chans", "n_freqs", "n_times", "n_outputs")


@dataclass(frozen=True)
class Range:
    """Bounds of a number (JSON schema's ``minimum`` and ``maximum``): ``Annotated[int, Range(1)]``."""

    minimum: float | None = None
    maximum: float | None = None

    def schema(self) -> dict:
        return {k: v for k, v in (("minimum", self.minimum), ("maximum", self.maximum)) if v is not None}


@dataclass(frozen=True)
class Length:
    """Bounds of a list's length (``minItems``, ``maxItems``): ``Annotated[list[int], Length(2, 2)]``."""

    min_items: int | None = None
    max_items: int | None = None

    def schema(self) -> dict:
        return {k: v for k, v in (("minItems", self.min_items), ("maxItems", self.max_items)) if v is not None}


ACTIVATIONS = {"relu": nn.ReLU, "elu": nn.ELU, "gelu": nn.GELU, "tanh": nn.Tanh, "leaky_relu": nn.LeakyReLU}
Activation = Literal[tuple(ACTIVATIONS)]
Positive = Annotated[int, Range(1)]
NonNegative = Annotated[int, Range(0)]
Probability = Annotated[float, Range(0, 1)]


def share_docs(entries: str) -> None:
    """Make numpydoc parameter ``entries`` (a name line, then indented description lines) available
    to docstrings as ``%(key)s`` lines; an entry's key is its name, or ``key: name`` on its first line."""
    for block in re.split(r"\n(?=\S)", inspect.cleandoc(entries)):
        first, _, rest = block.partition("\n")
        key, _, name = first.partition(":")
        key, name = key.strip(), (name or key).strip()
        if key in _SHARED_DOCS:
            raise ValueError(f"shared parameter doc {key!r} is declared twice")
        _SHARED_DOCS[key] = f"{name}\n{rest}"


def _fill_doc(doc: str) -> str:
    """``doc`` with each ``%(key)s`` line replaced by the shared entry ``key``, at that line's indent."""
    def entry(match):
        indent, key = match.group(1), match.group(2)
        if key not in _SHARED_DOCS:
            raise ValueError(f"docstring names the shared parameter doc {key!r}, which is not declared")
        return "\n".join(indent + line if line else line for line in _SHARED_DOCS[key].splitlines())

    return re.sub(r"^([ \t]*)%\((\w+)\)s[ \t]*$", entry, doc, flags=re.MULTILINE)


share_docs("""
activation
    Activation after each hidden or convolutional layer.
""")


def register_model(name: str, inputs: tuple[str, ...], rebuild: Callable[[dict], dict] | None = None):
    """Register a builder under ``name``; ``inputs`` lists the input kinds it accepts.

    "1d" is a store of signals (B, C, T); "2d" a store of feature maps or images (B, C, F, T).
    ``rebuild`` turns the args a model was trained with into those that rebuild it for its
    state dict (:func:`rebuild_args`). The builder's docstring gets its shared entries filled in.
    """

    def decorate(build):
        if name in _MODELS:
            raise ValueError(f"model {name!r} is registered twice")
        if build.__doc__:
            build.__doc__ = _fill_doc(build.__doc__)
        _MODELS[name] = build
        _INPUTS[name] = inputs
        if rebuild is not None:
            _REBUILD[name] = rebuild
        return build

    return decorate


def builder(name: str) -> Callable[..., nn.Module]:
    """The registered builder of arch ``name`` (a function or a class)."""
    return _MODELS[name]


def list_models() -> list[str]:
    return sorted(_MODELS)


def model_inputs(name: str) -> tuple[str, ...]:
    return _INPUTS[name]


def hyperparameters(name: str) -> dict[str, object]:
    """The keyword hyperparameters of ``name`` and their defaults (the arch's config keys)."""
    params = inspect.signature(_MODELS[name]).parameters.values()
    return {p.name: p.default for p in params if p.kind is inspect.Parameter.KEYWORD_ONLY}


def fits_a_head(name: str, args: dict) -> bool:
    """Whether arch ``name`` with ``args`` trains as a head fitted on frozen features (the class declares
    ``train_mode = "probe"``, as the rockets do, or the args ask for ``train_mode: probe``)."""
    from deepself.models.base import Model

    built = _MODELS[name] if isinstance(_MODELS[name], type) else Model
    return built.train_mode == "probe" or args.get("train_mode") == "probe"


def rebuild_args(name: str, args: dict) -> dict:
    """The args that rebuild a trained model of arch ``name`` for its state dict, which replaces every
    weight: pretrained weights are not read (``weights: null``), and a family whose network depends
    on its weights file says how (or refuses, with a DeepselfError) through ``register_model(rebuild=)``."""
    args = _REBUILD[name](dict(args)) if name in _REBUILD else dict(args)
    if "weights" in hyperparameters(name):
        args["weights"] = None
    return args


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
