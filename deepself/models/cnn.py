"""Convolutional networks in 1, 2 and 3 dimensions, with every layer's output size computed up front.

One block builder (:func:`conv_stack`) serves all three and the convolutional front end of
:mod:`deepself.models.crnn`. Per-layer keys (``kernel``, ``stride``, ``padding``, ``pool``) take one
value for every layer or a list of one value per layer; each value is one number for every axis or
a list of one number per axis, e.g. ``kernel: [[3, 7], [3, 3]]`` for two 2-D layers.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Literal

import torch
from torch import nn

from deepself.errors import DeepselfError
from deepself.models.base import Model
from deepself.models.registry import (ACTIVATIONS, Activation, Length, NonNegative, Positive, Probability, classifier,
                                      per_layer, register_model, share_docs)

_CONV = {1: nn.Conv1d, 2: nn.Conv2d, 3: nn.Conv3d}
_NORM = {1: nn.BatchNorm1d, 2: nn.BatchNorm2d, 3: nn.BatchNorm3d}
_POOL = {"max": {1: nn.MaxPool1d, 2: nn.MaxPool2d, 3: nn.MaxPool3d},
         "avg": {1: nn.AvgPool1d, 2: nn.AvgPool2d, 3: nn.AvgPool3d}}
_GLOBAL = {1: nn.AdaptiveAvgPool1d, 2: nn.AdaptiveAvgPool2d, 3: nn.AdaptiveAvgPool3d}
# A per-layer, per-axis key: one number, a list of one per layer, each one number or one per axis.
PerLayer = Positive | list[Positive | list[Positive]]
PerLayerPadding = NonNegative | list[NonNegative | list[NonNegative]]
Channels = Annotated[Sequence[Positive], Length(1)]
PoolType = Literal[tuple(_POOL)]

share_docs("""
channels
    Output channels of each convolutional layer (their number is the number of layers).
kernel
    Kernel size: one value for every layer or a list of one per layer; each value one number for every axis
    or a list of one per axis (e.g. [[3, 7], [3, 3]] for two 2-D layers).
stride
    Stride, per layer and per axis as kernel.
padding
    Zero padding, per layer and per axis as kernel.
pool_type
    Pooling after each layer, max or average.
batch_norm
    Batch normalisation after each convolution.
cnn_pool: pool
    Pooling size after each layer (1 = none), per layer and per axis as kernel.
cnn_dropout: dropout
    Dropout probability before the classifier and after each of its hidden layers.
global_pool
    Average the last feature map over all its axes (true) or flatten it (false).
cnn_hidden: hidden
    Nodes of fully connected layers between the convolutions and the output.
""")


def conv_output(size: int, kernel: int, stride: int, padding: int) -> int:
    """Length of a convolution's output along one axis (no dilation)."""
    return (size + 2 * padding - kernel) // stride + 1


def per_axis(value, dims: int, name: str, layer: int) -> tuple[int, ...]:
    """One number for every axis, or a list of exactly one per axis."""
    if isinstance(value, (list, tuple)):
        if len(value) != dims:
            raise DeepselfError(f"model args {name}: layer {layer} has {len(value)} values for {dims} axes")
        return tuple(int(v) for v in value)
    return (int(value),) * dims


def _shape(size) -> str:
    return " x ".join(str(d) for d in size)


def conv_stack(dims: int, in_channels: int, in_size: tuple[int, ...], *, channels, kernel, stride, padding,
               pool, pool_type="max", batch_norm=True, activation="relu"):
    """Blocks of convolution, optional batch norm, activation and pooling.

    Parameters
    ----------
    dims
        1, 2 or 3: the number of spatial axes.
    in_channels, in_size
        Channels and spatial size of one input sample.
    channels
        Output channels of each layer; the other keys are per layer and per axis (see the module).

    Returns
    -------
    blocks : nn.Sequential
    output_sizes : list of tuple
        (channels, *size) after each block.

    Raises
    ------
    DeepselfError
        When a layer's convolution or pooling shrinks an axis to nothing, naming the layer.
    """
    if not channels:
        raise DeepselfError("model args channels: at least one convolutional layer is needed")
    if activation not in ACTIVATIONS:
        raise DeepselfError(f"model args activation: {activation!r} is not one of {sorted(ACTIVATIONS)}")
    if pool_type not in _POOL:
        raise DeepselfError(f"model args pool_type: {pool_type!r} is not one of {sorted(_POOL)}")
    n = len(channels)
    values = {key: per_layer(value, n, key) for key, value in
              (("kernel", kernel), ("stride", stride), ("padding", padding), ("pool", pool))}
    blocks, size, c_in, output_sizes = [], tuple(in_size), in_channels, []
    for i, c_out in enumerate(channels):
        k, s, p, q = (per_axis(values[key][i], dims, key, i + 1) for key in ("kernel", "stride", "padding", "pool"))
        new = tuple(conv_output(d, *kspq) for d, *kspq in zip(size, k, s, p))
        if min(new) < 1:
            raise DeepselfError(f"model args: conv layer {i + 1} (kernel {_shape(k)}, stride {_shape(s)}, "
                                f"padding {_shape(p)}) shrinks the input of {_shape(size)} to {_shape(new)}")
        size = new
        blocks.append(_CONV[dims](c_in, c_out, k, s, p, bias=not batch_norm))
        if batch_norm:
            blocks.append(_NORM[dims](c_out))
        blocks.append(ACTIVATIONS[activation]())
        if max(q) > 1:
            new = tuple(d // f for d, f in zip(size, q))
            if min(new) < 1:
                raise DeepselfError(f"model args: pooling {_shape(q)} after conv layer {i + 1} "
                                    f"shrinks {_shape(size)} to {_shape(new)}")
            size = new
            blocks.append(_POOL[pool_type][dims](q))
        output_sizes.append((c_out, *size))
        c_in = c_out
    return nn.Sequential(*blocks), output_sizes


class ConvNet(Model):
    """Convolutional blocks, then global average pooling (or flattening) and a classifier.

    ``output_sizes`` holds (channels, *size) after each block, computed when the model is built.
    ``forward_features`` is the pooled (or flattened) last map, ``forward_head`` the classifier.
    """

    dims = 2

    def __init__(self, in_channels, in_size, n_outputs, *, channels, kernel, stride, padding, pool, pool_type,
                 batch_norm, activation, dropout, global_pool, hidden):
        super().__init__()
        self.features, self.output_sizes = conv_stack(
            self.dims, in_channels, in_size, channels=channels, kernel=kernel, stride=stride, padding=padding,
            pool=pool, pool_type=pool_type, batch_norm=batch_norm, activation=activation)
        c_out, *size = self.output_sizes[-1]
        flat = c_out
        if not global_pool:
            for d in size:
                flat *= d
        self.pool = _GLOBAL[self.dims](1) if global_pool else nn.Identity()
        self.classifier = nn.Sequential(nn.Flatten(), *classifier(flat, n_outputs, hidden, activation, dropout))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The last feature map averaged over its axes (or flattened): (B, D)."""
        return torch.flatten(self.pool(self.features(x)), 1)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Dropout and the hidden layers, then (unless ``pre_logits``) the output layer."""
        for layer in self.classifier[:-1]:
            x = layer(x)
        return x if pre_logits else self.classifier[-1](x)

    def get_classifier(self) -> nn.Linear:
        return self.classifier[-1]


@register_model("cnn1d", inputs=("1d", "2d"))
class CNN1d(ConvNet):
    """1-D CNN over time on signals (B, C, T); on maps (B, C, F, T) the C*F rows become channels.

    Parameters
    ----------
    %(channels)s
    %(kernel)s
    %(stride)s
    %(padding)s
    %(cnn_pool)s
    %(pool_type)s
    %(batch_norm)s
    %(activation)s
    %(cnn_dropout)s
    %(global_pool)s
    %(cnn_hidden)s

    References
    ----------
    DeepSELF 1-D CNN (Koike et al., 2020)
    """

    dims = 1

    def __init__(self, n_chans, n_freqs, n_times, n_outputs, *, channels: Channels = (16, 32), kernel: PerLayer = 3,
                 stride: PerLayer = 1, padding: PerLayerPadding = 1, pool: PerLayer = 2, pool_type: PoolType = "max",
                 batch_norm: bool = True, activation: Activation = "relu", dropout: Probability = 0.0,
                 global_pool: bool = True, hidden: Sequence[Positive] = ()):
        super().__init__(n_chans * (n_freqs or 1), (n_times,), n_outputs, channels=channels, kernel=kernel,
                         stride=stride, padding=padding, pool=pool, pool_type=pool_type, batch_norm=batch_norm,
                         activation=activation, dropout=dropout, global_pool=global_pool, hidden=hidden)

    def forward_features(self, x):
        return super().forward_features(x.flatten(1, -2) if x.ndim == 4 else x)


@register_model("cnn2d", inputs=("2d",))
class CNN2d(ConvNet):
    """2-D CNN on feature maps or images (B, C, F, T): frequency (height) x time (width).

    Parameters
    ----------
    %(channels)s
    %(kernel)s
    %(stride)s
    %(padding)s
    %(cnn_pool)s
    %(pool_type)s
    %(batch_norm)s
    %(activation)s
    %(cnn_dropout)s
    %(global_pool)s
    %(cnn_hidden)s

    References
    ----------
    DeepSELF 2-D CNN (Koike et al., 2020)
    """

    dims = 2

    def __init__(self, n_chans, n_freqs, n_times, n_outputs, *, channels: Channels = (16, 32), kernel: PerLayer = 3,
                 stride: PerLayer = 1, padding: PerLayerPadding = 1, pool: PerLayer = 2, pool_type: PoolType = "max",
                 batch_norm: bool = True, activation: Activation = "relu", dropout: Probability = 0.0,
                 global_pool: bool = True, hidden: Sequence[Positive] = ()):
        super().__init__(n_chans, (n_freqs, n_times), n_outputs, channels=channels, kernel=kernel, stride=stride,
                         padding=padding, pool=pool, pool_type=pool_type, batch_norm=batch_norm,
                         activation=activation, dropout=dropout, global_pool=global_pool, hidden=hidden)


@register_model("cnn3d", inputs=("2d",))
class CNN3d(ConvNet):
    """3-D CNN on stacked maps: (B, C, F, T) is one (B, 1, C, F, T) volume, e.g. the spectrograms of C EEG channels.

    The default pools frequency and time only, so that few input channels survive the pooling.

    Parameters
    ----------
    %(channels)s
    %(kernel)s
    %(stride)s
    %(padding)s
    pool
        Pooling size after each layer (1 = none), per layer and per axis (channel, frequency, time) as
        kernel; the default pools frequency and time only.
    %(pool_type)s
    %(batch_norm)s
    %(activation)s
    %(cnn_dropout)s
    %(global_pool)s
    %(cnn_hidden)s

    References
    ----------
    DeepSELF 3-D CNN (Koike et al., 2020); 3-D convolution: Ji et al., TPAMI 2013
    """

    dims = 3

    def __init__(self, n_chans, n_freqs, n_times, n_outputs, *, channels: Channels = (8, 16), kernel: PerLayer = 3,
                 stride: PerLayer = 1, padding: PerLayerPadding = 1, pool: PerLayer = ((1, 2, 2), (1, 2, 2)),
                 pool_type: PoolType = "max", batch_norm: bool = True, activation: Activation = "relu",
                 dropout: Probability = 0.0, global_pool: bool = True, hidden: Sequence[Positive] = ()):
        super().__init__(1, (n_chans, n_freqs, n_times), n_outputs, channels=channels, kernel=kernel, stride=stride,
                         padding=padding, pool=pool, pool_type=pool_type, batch_norm=batch_norm,
                         activation=activation, dropout=dropout, global_pool=global_pool, hidden=hidden)

    def forward_features(self, x):
        return super().forward_features(x.unsqueeze(1))
