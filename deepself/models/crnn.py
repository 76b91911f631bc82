"""Convolutional recurrent network: a 1-D or 2-D CNN front end, then a recurrent layer over time.

The CNN keeps the time axis: its output (B, C', F', T') is read as a sequence of T' steps of
C'*F' features ((B, C', T') -> T' steps of C' features for the 1-D front end), as in DeepSELF's
1D CNN + GRU (Koike et al. 2020). In 2-D, ``pool`` pools frequency only unless ``pool_time``.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from deepself.errors import DeepselfError
from deepself.models.base import Model
from deepself.models.cnn import Channels, PerLayer, PerLayerPadding, PoolType, conv_stack
from deepself.models.registry import Activation, Positive, Probability, per_layer, register_model
from deepself.models.rnn import CELLS, Readout, RecurrentClassifier


@register_model("crnn", inputs=("1d", "2d"))
class CRNN(Model):
    """CNN blocks, reshaped to (B, T', features), then an RNN/LSTM/GRU and a classifier.

    Parameters
    ----------
    conv
        1d: convolve over time with the C (x F) input rows as channels; 2d: convolve over frequency x time
        (needs a 2-D feature).
    %(channels)s
    %(kernel)s
    %(stride)s
    %(padding)s
    pool
        Pooling size after each layer (one value or one per layer): along time for conv 1d; along frequency
        for conv 2d, where time is kept unless pool_time (a per-layer [frequency, time] pair sets both).
    pool_time
        With conv 2d, pool along time too (fewer, coarser recurrent steps).
    %(pool_type)s
    %(batch_norm)s
    %(activation)s
    cell
        Recurrent layer after the CNN.
    %(rnn_hidden)s
    %(rnn_layers)s
    %(bidirectional)s
    %(rnn_dropout)s
    %(readout)s

    References
    ----------
    DeepSELF 1D CNN + GRU (Koike et al., 2020)
    """

    def __init__(self, n_chans, n_freqs, n_times, n_outputs, *, conv: Literal["1d", "2d"] = "1d",
                 channels: Channels = (32, 64), kernel: PerLayer = 3, stride: PerLayer = 1,
                 padding: PerLayerPadding = 1, pool: PerLayer = 2, pool_time: bool = False,
                 pool_type: PoolType = "max", batch_norm: bool = True, activation: Activation = "relu",
                 cell: Literal[tuple(CELLS)] = "gru", hidden: Positive = 64, layers: Positive = 1,
                 bidirectional: bool = False, dropout: Probability = 0.0, readout: Readout = "last"):
        super().__init__()
        if conv not in ("1d", "2d"):
            raise DeepselfError(f"model args conv: {conv!r} is not one of ['1d', '2d']")
        if conv == "2d" and n_freqs is None:
            raise DeepselfError(f"model args conv: 2d needs a feature map, the input is 1-D ({n_chans} x {n_times})")
        self.conv = conv
        pools = per_layer(pool, len(channels), "pool")
        if conv == "1d":
            in_channels, in_size = n_chans * (n_freqs or 1), (n_times,)
        else:
            in_channels, in_size = n_chans, (n_freqs, n_times)
            pools = [q if isinstance(q, (list, tuple)) else (q, q if pool_time else 1) for q in pools]
        self.features, self.output_sizes = conv_stack(
            1 if conv == "1d" else 2, in_channels, in_size, channels=channels, kernel=kernel, stride=stride,
            padding=padding, pool=pools, pool_type=pool_type, batch_norm=batch_norm, activation=activation)
        c_out, *size = self.output_sizes[-1]
        n_features = c_out * (size[0] if conv == "2d" else 1)
        self.head = RecurrentClassifier(cell, n_features, n_outputs, hidden=hidden, layers=layers,
                                        bidirectional=bidirectional, dropout=dropout, readout=readout)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The recurrent readout of the CNN's time steps: (B, hidden x directions)."""
        if self.conv == "1d" and x.ndim == 4:
            x = x.flatten(1, 2)
        x = self.features(x)
        # (B, C', T') -> (B, T', C'); (B, C', F', T') -> (B, T', C'*F')
        seq = x.transpose(1, 2) if x.ndim == 3 else x.permute(0, 3, 1, 2).flatten(2)
        return self.head.read(seq)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head.forward_head(x, pre_logits)

    def get_classifier(self) -> nn.Linear:
        return self.head.fc
