"""Recurrent networks (Elman RNN, LSTM, GRU) over the time axis, uni- or bi-directional.

Signals (B, C, T) are a sequence over T of C features; feature maps and images (B, C, F, T) a
sequence over T of C*F features. The classifier reads the last step or the mean over time.
"""

from __future__ import annotations

from typing import Literal

import torch
from torch import nn

from deepself.errors import DeepselfError
from deepself.models.base import Model
from deepself.models.registry import Positive, Probability, register_model, share_docs

CELLS = {"rnn": nn.RNN, "lstm": nn.LSTM, "gru": nn.GRU}
READOUTS = ("last", "mean")
Readout = Literal[READOUTS]

share_docs("""
rnn_hidden: hidden
    Nodes (state size) of each recurrent layer and direction.
rnn_layers: layers
    Stacked recurrent layers.
bidirectional
    Also run backwards in time (the classifier sees both directions).
rnn_dropout: dropout
    Dropout probability between stacked recurrent layers and before the classifier.
readout
    What the classifier reads: last (the final state of each direction) or mean (the outputs averaged over
    time).
""")


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

    def read(self, seq: torch.Tensor) -> torch.Tensor:
        """The recurrent stack's readout of sequences (B, T, features): (B, hidden x directions)."""
        out, _ = self.rnn(seq)
        if self.readout == "mean":
            return out.mean(dim=1)
        if self.bidirectional:
            return torch.cat([out[:, -1, : self.hidden], out[:, 0, self.hidden :]], dim=1)
        return out[:, -1]

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Dropout, then (unless ``pre_logits``) the linear classifier."""
        x = self.dropout(x)
        return x if pre_logits else self.fc(x)

    def forward(self, seq: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.read(seq))


def to_sequence(x: torch.Tensor) -> torch.Tensor:
    """(B, C, T) or (B, C, F, T) -> (B, T, C) or (B, T, C*F)."""
    return x.flatten(1, -2).transpose(1, 2)


class RecurrentNet(Model):
    """A recurrent classifier on raw signals or feature maps (time is the sequence axis)."""

    def __init__(self, cell, n_chans, n_freqs, n_times, n_outputs, *, hidden, layers, bidirectional, dropout,
                 readout):
        super().__init__()
        self.head = RecurrentClassifier(cell, n_chans * (n_freqs or 1), n_outputs, hidden=hidden, layers=layers,
                                        bidirectional=bidirectional, dropout=dropout, readout=readout)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The recurrent readout of the input's time steps: (B, hidden x directions)."""
        return self.head.read(to_sequence(x))

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return self.head.forward_head(x, pre_logits)

    def get_classifier(self) -> nn.Linear:
        return self.head.fc


def _register(cell: str, title: str, reference: str):
    def build(n_chans, n_freqs, n_times, n_outputs, *, hidden: Positive = 64, layers: Positive = 1,
              bidirectional: bool = False, dropout: Probability = 0.0, readout: Readout = "last"):
        return RecurrentNet(cell, n_chans, n_freqs, n_times, n_outputs, hidden=hidden, layers=layers,
                            bidirectional=bidirectional, dropout=dropout, readout=readout)

    build.__name__ = build.__qualname__ = cell
    build.__doc__ = (f"{title} over time on signals (B, C, T) or maps (B, C, F, T).\n\n"
                     "Parameters\n----------\n%(rnn_hidden)s\n%(rnn_layers)s\n%(bidirectional)s\n%(rnn_dropout)s\n"
                     f"%(readout)s\n\nReferences\n----------\n{reference}\n")
    return register_model(cell, inputs=("1d", "2d"))(build)


rnn = _register("rnn", "Elman RNN (tanh)", "Elman, Cognitive Science 1990")
lstm = _register("lstm", "LSTM", "Hochreiter & Schmidhuber, Neural Computation 1997")
gru = _register("gru", "GRU", "Cho et al., EMNLP 2014")
