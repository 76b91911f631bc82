"""Convolutional recurrent network: a 1-D or 2-D CNN front end, then a recurrent layer over time.

The CNN keeps the time axis: its output (B, C', F', T') is read as a sequence of T' steps of
C'*F' features ((B, C', T') -> T' steps of C' features for the 1-D front end), as in DeepSELF's
1D CNN + GRU (Koike et al. 2020). In 2-D, ``pool`` pools frequency only unless ``pool_time``.
"""

from __future__ import annotations

from torch import nn

from deepself.errors import DeepselfError
from deepself.models.cnn import conv_stack
from deepself.models.registry import per_layer, register_model
from deepself.models.rnn import RecurrentClassifier


@register_model("crnn", inputs=("1d", "2d"))
class CRNN(nn.Module):
    """CNN blocks, reshaped to (B, T', features), then an RNN/LSTM/GRU and a classifier.

    Parameters
    ----------
    conv
        ``1d``: convolve over time, the C (x F) input rows being channels; ``2d``: convolve the
        map over frequency and time (needs a 2-D feature).
    channels, kernel, stride, padding, batch_norm, activation, pool_type
        The CNN, as for ``cnn1d`` / ``cnn2d``.
    pool
        Pooling size of each layer: along time for ``1d``; along frequency for ``2d`` (and along
        time too when ``pool_time``).
    cell, hidden, layers, bidirectional, dropout, readout
        The recurrent part, as for ``rnn`` / ``lstm`` / ``gru``.
    """

    def __init__(self, n_chans, n_freqs, n_times, n_outputs, *, conv="1d", channels=(32, 64), kernel=3, stride=1,
                 padding=1, pool=2, pool_time=False, pool_type="max", batch_norm=True, activation="relu",
                 cell="gru", hidden=64, layers=1, bidirectional=False, dropout=0.0, readout="last"):
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

    def forward(self, x):
        if self.conv == "1d" and x.ndim == 4:
            x = x.flatten(1, 2)
        x = self.features(x)
        # (B, C', T') -> (B, T', C'); (B, C', F', T') -> (B, T', C'*F')
        seq = x.transpose(1, 2) if x.ndim == 3 else x.permute(0, 3, 1, 2).flatten(2)
        return self.head(seq)
