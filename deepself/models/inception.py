"""InceptionTime's network on signals (B, C, T) (Ismail Fawaz et al., Data Min. Knowl. Disc. 2020).

A port of the authors' Keras code (github.com/hfawaz/InceptionTime, ``classifiers/inception.py``):
``depth`` Inception modules, each a bottleneck 1 x 1 convolution (when its input has more than
one channel), three parallel convolutions of ``kernel_size``, ``kernel_size // 2`` and
``kernel_size // 4`` taps on the bottleneck and a 3-wide max-pooling followed by a 1 x 1
convolution on the module's input, concatenated, batch-normalised and rectified; a residual
connection every third module (the last residual's output through a 1 x 1 convolution and batch
norm, added, rectified); then the average over time and a linear layer (the softmax is the
loss's). Convolutions have no bias and Keras' ``padding="same"``: an even kernel's odd padding
sample goes on the right, as TensorFlow pads, so every layer keeps the input's length.

The helpers :func:`conv_same`, :class:`SameConv1d`, :func:`multiplex_kernels` and
:func:`keras_init` also serve :mod:`deepself.models.lite`.
"""

from __future__ import annotations

from typing import Annotated

import torch
import torch.nn.functional as F
from torch import nn

from deepself.errors import DeepselfError
from deepself.models.base import Model
from deepself.models.registry import NonNegative, Positive, Range, register_model

KernelSize = Annotated[int, Range(4)]  # the smallest of the three convolutions has a quarter of it


def same_padding(kernel: int, dilation: int = 1) -> tuple[int, int]:
    """Left and right padding of a stride-1 convolution under TensorFlow's ``padding="same"``.

    Parameters
    ----------
    kernel, dilation
        The convolution's taps and dilation.

    Returns
    -------
    tuple of int
        ``(total // 2, total - total // 2)`` with ``total = dilation * (kernel - 1)``: the odd
        sample of an even kernel's padding on the right.
    """
    total = dilation * (kernel - 1)
    return total // 2, total - total // 2


def conv_same(x: torch.Tensor, weight: torch.Tensor, dilation: int = 1, groups: int = 1) -> torch.Tensor:
    """Stride-1 convolution of ``x`` (B, C, T) without bias, padded as Keras' ``padding="same"``.

    Symmetric padding is the convolution's own; asymmetric padding (even kernels) is an explicit
    ``F.pad``, which exports to ONNX as a Pad node. A dilated convolution runs as
    :func:`dilated_by_phases`.
    """
    left, right = same_padding(weight.shape[-1], dilation)
    if dilation > 1:
        return dilated_by_phases(F.pad(x, (left, right)), weight, dilation, groups)[..., : x.shape[-1]]
    if left == right:
        return F.conv1d(x, weight, None, 1, left, 1, groups)
    return F.conv1d(F.pad(x, (left, right)), weight, None, 1, 0, 1, groups)


def dilated_by_phases(x: torch.Tensor, weight: torch.Tensor, dilation: int, groups: int = 1) -> torch.Tensor:
    """Unpadded convolution of ``x`` (B, C, L) dilated ``dilation``, as undilated ones on its phases.

    Sample ``m * dilation + p`` of a dilated convolution's output is sample ``m`` of the undilated
    convolution of phase ``p`` (every ``dilation``-th sample from ``p``): the phases go through one
    undilated convolution as a batch of ``B * dilation``, and their outputs are interleaved again.
    Same result; on the CPU oneDNN's dilated depthwise convolution took 3.6 times as long, forward
    and backward (LITE's separable convolutions: 113 channels, 20 taps, dilation 2).

    Returns
    -------
    torch.Tensor
        (B, C_out, n): the ``L - dilation * (taps - 1)`` samples of the convolution, and up to
        ``dilation - 1`` more computed on zero padding at the end, for the caller to cut.
    """
    x = F.pad(x, (0, -x.shape[-1] % dilation))
    channels, length = x.shape[1], x.shape[-1] // dilation
    phases = x.reshape(-1, channels, length, dilation).permute(0, 3, 1, 2).reshape(-1, channels, length)
    y = F.conv1d(phases, weight, None, 1, 0, 1, groups)
    y = y.reshape(-1, dilation, y.shape[1], y.shape[2]).permute(0, 2, 3, 1)
    return y.reshape(y.shape[0], y.shape[1], -1)


class SameConv1d(nn.Conv1d):
    """A stride-1 ``nn.Conv1d`` without bias and with Keras' ``padding="same"`` (see :func:`conv_same`)."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int = 1,
                 groups: int = 1):
        super().__init__(in_channels, out_channels, kernel_size, dilation=dilation, groups=groups, bias=False)

    def forward(self, x):
        return conv_same(x, self.weight, self.dilation[0], self.groups)


def multiplex_kernels(kernel_size: int, n: int = 3) -> list[int]:
    """The reference code's kernel sizes ``[kernel_size // 2 ** i for i in range(n)]`` (40: 40, 20, 10).

    Raises
    ------
    DeepselfError
        When the smallest would have no tap.
    """
    sizes = [int(kernel_size) // 2 ** i for i in range(n)]
    if sizes[-1] < 1:
        raise DeepselfError(f"model args kernel_size: {kernel_size} is too small for {n} kernel sizes "
                            f"halving from it (at least {2 ** (n - 1)})")
    return sizes


def keras_init(model: nn.Module) -> nn.Module:
    """Initialise as Keras does: Glorot-uniform convolution and linear weights, zero biases.

    Batch norm keeps PyTorch's (and Keras') ones and zeros. Glorot's bound depends on fan-in plus
    fan-out, which are the same sums for Keras' and PyTorch's layouts of depthwise kernels.
    """
    for module in model.modules():
        if isinstance(module, (nn.Conv1d, nn.Linear)):
            nn.init.xavier_uniform_(module.weight)
            if module.bias is not None:
                nn.init.zeros_(module.bias)
    return model


class InceptionModule(nn.Module):
    """One Inception module: ``_inception_module`` of the reference code.

    Parameters
    ----------
    in_channels
        Channels of the module's input.
    n_filters
        Filters of each of the four branches (the output has ``4 * n_filters`` channels).
    kernel_sizes
        Taps of the parallel convolutions.
    bottleneck
        Channels of the bottleneck, used when ``in_channels > 1``; 0 = none.
    """

    def __init__(self, in_channels: int, n_filters: int, kernel_sizes: list[int], bottleneck: int):
        super().__init__()
        use = bool(bottleneck) and in_channels > 1
        self.bottleneck = nn.Conv1d(in_channels, bottleneck, 1, bias=False) if use else nn.Identity()
        width = bottleneck if use else in_channels
        self.convs = nn.ModuleList(SameConv1d(width, n_filters, k) for k in kernel_sizes)
        self.pool = nn.MaxPool1d(3, stride=1, padding=1)
        self.pool_conv = nn.Conv1d(in_channels, n_filters, 1, bias=False)
        self.bn = nn.BatchNorm1d(n_filters * (len(kernel_sizes) + 1))

    def forward(self, x):
        z = self.bottleneck(x)
        branches = [conv(z) for conv in self.convs]
        branches.append(self.pool_conv(self.pool(x)))
        return F.relu(self.bn(torch.cat(branches, dim=1)))


class Shortcut(nn.Module):
    """The residual connection (``_shortcut_layer``): 1 x 1 convolution and batch norm, added, rectified."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv = nn.Conv1d(in_channels, out_channels, 1, bias=False)
        self.bn = nn.BatchNorm1d(out_channels)

    def forward(self, residual, x):
        return F.relu(x + self.bn(self.conv(residual)))


class PooledLinearHead(Model):
    """The head of the time-series networks: an embedding from ``forward_features``, then ``self.fc``."""

    def forward_head(self, x, pre_logits: bool = False):
        """The class scores of an embedding, or the embedding itself when ``pre_logits``."""
        return x if pre_logits else self.fc(x)

    def get_classifier(self) -> nn.Linear:
        """The last linear layer."""
        return self.fc


@register_model("inception", inputs=("1d",))
class InceptionTime(PooledLinearHead):
    """InceptionTime's network: one member of the InceptionTime ensemble (see the module).

    Parameters
    ----------
    n_chans, n_freqs, n_times, n_outputs
        The input's channels and samples (``n_freqs`` is None: signals only) and the classes.
    n_filters
        Filters of each of a module's four branches (three convolutions and the max-pooling's 1 x 1
        convolution); a module outputs four times as many channels.
    depth
        Inception modules (the paper's 6).
    kernel_size
        Taps of each module's largest convolution; the other two have half and a quarter of it (40: 40, 20,
        10; the reference code's kernel_size 41 minus the one it takes off).
    bottleneck
        Channels of the 1 x 1 bottleneck convolution before each module's convolutions (0 = none); a module
        whose input has one channel has none.
    residual
        A residual connection (1 x 1 convolution and batch norm of the shortcut, added, ReLU) every third
        module.

    References
    ----------
    InceptionTime (Ismail Fawaz et al., Data Min. Knowl. Disc. 2020), one network of the ensemble
    """

    def __init__(self, n_chans, n_freqs, n_times, n_outputs, *, n_filters: Positive = 32, depth: Positive = 6,
                 kernel_size: KernelSize = 40, bottleneck: NonNegative = 32, residual: bool = True):
        super().__init__()
        if depth < 1:
            raise DeepselfError(f"model args depth: {depth}; at least one module is needed")
        kernels = multiplex_kernels(kernel_size, 3)
        width = n_filters * (len(kernels) + 1)
        self.residual = bool(residual)
        self.blocks = nn.ModuleList(
            InceptionModule(n_chans if d == 0 else width, n_filters, kernels, bottleneck) for d in range(depth))
        n_shortcuts = depth // 3 if self.residual else 0
        self.shortcuts = nn.ModuleList(
            Shortcut(n_chans if i == 0 else width, width) for i in range(n_shortcuts))
        self.fc = nn.Linear(width, n_outputs)
        self.num_features = width
        keras_init(self)

    def forward_features(self, x):
        """The embedding (B, ``4 * n_filters``): the last module's output averaged over time."""
        residual = x
        for d, block in enumerate(self.blocks):
            x = block(x)
            if self.residual and d % 3 == 2:
                x = self.shortcuts[d // 3](residual, x)
                residual = x
        return x.mean(dim=-1)

