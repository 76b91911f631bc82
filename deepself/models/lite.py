"""LITE on signals (B, C, T) (Ismail-Fawaz, Devanne, Berretti, Weber & Forestier, DSAA 2023).

A port of the authors' Keras code (github.com/MSD-IRIMAS/LITE, ``classifiers/lite.py``):

1. The first layer (``_inception_module`` with ``use_hybird_layer``): ``n_filters`` filters of
   each of ``kernel_size``, ``kernel_size // 2`` and ``kernel_size // 4`` taps ("multiplexing";
   without it, ``3 * n_filters`` filters of ``kernel_size`` taps), and beside them 17 fixed
   hand-crafted filters (``hybird_layer``), rectified: increase and decrease detectors of 2, 4, 8,
   16, 32 and 64 taps and peak detectors of 6, 12, 24, 48 and 96; all concatenated,
   batch-normalised and rectified.
2. Two depthwise-separable convolutions (``_fcn_module``: Keras' ``SeparableConv1D``, one
   depthwise filter per channel, then ``n_filters`` pointwise ones) of ``kernel_size // 2`` and
   ``kernel_size // 4`` taps, dilated 2 and 4 (1 and 1 without ``use_dilation``), each
   batch-normalised and rectified.
3. The average over time and a linear layer (the softmax is the loss's).

Convolutions have no bias and Keras' ``padding="same"`` (:func:`deepself.models.inception.conv_same`).
The hand-crafted filters are a buffer, not parameters: nothing trains them, the optimiser never
sees them, and the checkpoint does not store them (they are rebuilt from their definition).

The reference reads univariate series only. On C > 1 channels the first layer's convolutions
span all channels and each hand-crafted filter sums its response over the channels, as the
reference's layers would with a C-channel input (its ``hybird_layer`` builds filters of shape
(taps, C, 1)); the authors' multivariate variant LITEMV (separable first layer, hand-crafted
filters per channel) is not this.
"""

from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepself.errors import DeepselfError
from deepself.models.inception import (KernelSize, PooledLinearHead, SameConv1d, conv_same, keras_init,
                                      multiplex_kernels, same_padding)
from deepself.models.registry import Positive, register_model

CUSTOM_LENGTHS = (2, 4, 8, 16, 32, 64)


def increase_filter(length: int) -> np.ndarray:
    """The increase detector: -1 at even taps, +1 at odd ones (``hybird-increasse`` in the reference)."""
    return np.where(np.arange(length) % 2 == 0, -1.0, 1.0)


def peak_filter(length: int) -> np.ndarray:
    """The peak detector of ``length + length // 2`` taps (``hybird-peeks``): a negative, a doubled
    positive and a negative lobe, each of two squared ramps of ``length // 4`` taps."""
    quarter = length // 4
    left = np.linspace(0, 1, quarter + 1)[1:] ** 2
    lobe = np.concatenate([left, left[::-1]])
    return np.concatenate([-lobe, 2 * lobe, -lobe])


def custom_filters(lengths=CUSTOM_LENGTHS) -> list[np.ndarray]:
    """The 17 hand-crafted filters in the reference's order: increase, decrease, then peak detectors.

    Parameters
    ----------
    lengths
        Taps of the increase and decrease detectors; the peak detectors take ``lengths[1:]``.
    """
    increase = [increase_filter(k) for k in lengths]
    return increase + [-f for f in increase] + [peak_filter(k) for k in lengths[1:]]


def aligned_bank(filters: list[np.ndarray], n_chans: int) -> torch.Tensor:
    """Filters of different lengths as one (n, n_chans, taps) convolution weight.

    Each filter sits in the longest one's taps so that the bank under 'same' padding gives, filter
    by filter, what the filter alone gives under its own 'same' padding; every filter is repeated
    over the input channels (its response is summed over them).
    """
    taps = max(len(f) for f in filters)
    left = same_padding(taps)[0]
    bank = np.zeros((len(filters), taps))
    for row, f in zip(bank, filters):
        start = left - same_padding(len(f))[0]
        row[start : start + len(f)] = f
    return torch.from_numpy(bank).float()[:, None, :].repeat(1, n_chans, 1)


class SeparableConv(nn.Sequential):
    """Keras' ``SeparableConv1D`` without bias (depth multiplier 1), then batch norm and ReLU."""

    def __init__(self, in_channels: int, out_channels: int, kernel_size: int, dilation: int):
        super().__init__(SameConv1d(in_channels, in_channels, kernel_size, dilation=dilation, groups=in_channels),
                         nn.Conv1d(in_channels, out_channels, 1, bias=False),
                         nn.BatchNorm1d(out_channels), nn.ReLU())


class LiteStem(nn.Module):
    """LITE's first layer: the multiplexing convolutions and the rectified hand-crafted filters,
    concatenated, batch-normalised and rectified (see the module)."""

    def __init__(self, n_chans: int, n_filters: int, kernel_size: int, use_multiplexing: bool,
                 use_custom_filters: bool):
        super().__init__()
        kernels = multiplex_kernels(kernel_size, 3) if use_multiplexing else [int(kernel_size)]
        width = n_filters if use_multiplexing else 3 * n_filters
        self.convs = nn.ModuleList(SameConv1d(n_chans, width, k) for k in kernels)
        bank = aligned_bank(custom_filters(), n_chans) if use_custom_filters else None
        self.register_buffer("custom", bank, persistent=False)
        self.out_channels = width * len(kernels) + (0 if bank is None else len(bank))
        self.bn = nn.BatchNorm1d(self.out_channels)

    def forward(self, x):
        parts = [conv(x) for conv in self.convs]
        if self.custom is not None:
            parts.append(F.relu(conv_same(x, self.custom)))
        return F.relu(self.bn(torch.cat(parts, dim=1)))


@register_model("lite", inputs=("1d",))
class LITE(PooledLinearHead):
    """LITE's network: one member of the LITETime ensemble (see the module).

    Parameters
    ----------
    n_chans, n_freqs, n_times, n_outputs
        The input's channels and samples (``n_freqs`` is None: signals only) and the classes.
    n_filters
        Filters of each of the first layer's convolutions and of each separable convolution.
    kernel_size
        Taps of the first layer's largest convolution (40: 40, 20 and 10 with use_multiplexing); the two
        separable convolutions have half and a quarter of it (20, 10).
    use_custom_filters
        Add LITE's 17 fixed hand-crafted filters (increase, decrease and peak detectors; not trained) to the
        first layer.
    use_dilation
        Dilate the two separable convolutions 2 and 4 (false = 1).
    use_multiplexing
        The first layer has n_filters filters of each of three kernel sizes (false = 3 x n_filters of
        kernel_size).

    Notes
    -----
    The reference's ``kernel_size=41`` is ``kernel_size: 40`` here: its code takes one off.

    References
    ----------
    LITE (Ismail-Fawaz, Devanne, Berretti, Weber & Forestier, DSAA 2023)
    """

    def __init__(self, n_chans, n_freqs, n_times, n_outputs, *, n_filters: Positive = 32,
                 kernel_size: KernelSize = 40, use_custom_filters: bool = True, use_dilation: bool = True,
                 use_multiplexing: bool = True):
        super().__init__()
        if kernel_size < 4:
            raise DeepselfError(f"model args kernel_size: {kernel_size}; LITE needs at least 4 "
                                "(its last convolution has a quarter of it)")
        self.stem = LiteStem(n_chans, n_filters, kernel_size, use_multiplexing, use_custom_filters)
        half = int(kernel_size) // 2
        self.separable = nn.Sequential(*(
            SeparableConv(self.stem.out_channels if i == 0 else n_filters, n_filters, half // 2 ** i,
                          2 ** (i + 1) if use_dilation else 1) for i in range(2)))
        self.fc = nn.Linear(n_filters, n_outputs)
        self.num_features = n_filters
        keras_init(self)

    def forward_features(self, x):
        """The embedding (B, ``n_filters``): the last separable convolution averaged over time."""
        return self.separable(self.stem(x)).mean(dim=-1)

