"""Recurrent networks (Elman RNN, LSTM, GRU) over the time axis, uni- or bi-directional.

Signals (B, C, T) are a sequence over T of C features; feature maps and images (B, C, F, T) a
sequence over T of C*F features. The classifier reads the last step or the mean over time.
"""

from __future__ import annotations

import torch
from torch import nn

from deepself.errors import DeepselfError
from deepself.models.registry import register_model

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
READOUTS = ("last", "mean")


class RecurrentClassifier(nn.Module):
    """A recurrent stack on sequences (B, T, features), read out, then a linear classifier.

    ``readout: last`` uses the state after the last step of each direction (for the backward
    direction that is its output at the first step); ``mean`` averages the outputs over time.
    """

    def __init__(self, cell: str, n_features: int, n_outputs: int, *, hidden: int, layers: int,
                 bidirectional: bool, dropout: float, readout: str):
        super().__init__()
        if cell not in CELLS:
            raise DeepselfError(f"model args cell: {cell!r} is not one of {sorted(CELLS)}")
        if readout not in READOUTS:
            raise DeepselfError(f"model args readout: {readout!r} is not one of {list(READOUTS)}")
        if layers < 1:
            raise DeepselfError(f"model args layers: {layers}, at least one recurrent layer is needed")
        # torch applies dropout between stacked layers only and warns when there is one layer.
        self.rnn = CELLS[cell](n_features, hidden, num_layers=layers, batch_first=True,
                               bidirectional=bidirectional, dropout=dropout if layers > 1 else 0.0)
        self.hidden, self.bidirectional, self.readout = hidden, bidirectional, readout
        self.dropout = nn.Dropout(dropout)
        self.fc = nn.Linear(hidden * (2 if bidirectional else 1), n_outputs)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        out, _ = self.rnn(seq)
        if self.readout == "mean":
            read = out.mean(dim=1)
        elif self.bidirectional:
            read = torch.cat([out[:, -1, : self.hidden], out[:, 0, self.hidden :]], dim=1)
        else:
            read = out[:, -1]
        return self.fc(self.dropout(read))


def to_sequence(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T) or (B, C, F, T) -> (B, T, C) or (B, T, C*F)."""
    return x.flatten(1, -2).transpose(1, 2)


class RecurrentNet(nn.Module):
    """A recurrent classifier on raw signals or feature maps (time is the sequence axis)."""

    def __init__(self, cell, n_chans, n_freqs, n_times, n_outputs, *, hidden, layers, bidirectional, dropout,
                 readout):
        super().__init__()
        self.head = RecurrentClassifier(cell, n_chans * (n_freqs or 1), n_outputs, hidden=hidden, layers=layers,
                                        bidirectional=bidirectional, dropout=dropout, readout=readout)

    def forward(self, x):
        return self.head(to_sequence(x))


def _register(cell: str, title: str):
    def build(n_chans, n_freqs, n_times, n_outputs, *, hidden=64, layers=1, bidirectional=False, dropout=0.0,
              readout="last"):
        return RecurrentNet(cell, n_chans, n_freqs, n_times, n_outputs, hidden=hidden, layers=layers,
                            bidirectional=bidirectional, dropout=dropout, readout=readout)

    build.__name__ = build.__qualname__ = cell
    build.__doc__ = (f"{title} over time on signals (B, C, T) or maps (B, C, F, T).\n\n"
                     "Parameters\n----------\nhidden\n    Nodes (state size) of each layer and direction.\n"
                     "layers\n    Stacked recurrent layers.\nbidirectional\n    Also run backwards in time.\n"
                     "dropout\n    Between stacked layers and before the classifier.\n"
                     "readout\n    ``last`` (final state) or ``mean`` (outputs averaged over time).\n")
    return register_model(cell, inputs=("1d", "2d"))(build)


rnn = _register("rnn", "Elman RNN (tanh)")
lstm = _register("lstm", "LSTM (Hochreiter & Schmidhuber 1997)")
gru = _register("gru", "GRU (Cho et al. 2014)")
