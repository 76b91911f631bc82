"""Fully connected network on the flattened input (DeepSELF's FNN)."""

from __future__ import annotations

from torch import nn

from deepself.errors import DeepselfError
from deepself.models.registry import ACTIVATIONS, register_model


@register_model("fnn", inputs=("1d", "2d"))
class FNN(nn.Module):
    """Flatten, then ``hidden`` fully connected layers with activation and dropout, then the output layer.

    Parameters
    ----------
    hidden
        Nodes of each hidden layer, or of every layer when ``layers`` is given.
    layers
        Number of hidden layers when ``hidden`` is a single number.
    """

    def __init__(self, n_chans, n_freqs, n_times, n_outputs, *, hidden=(128, 64), layers=None,
                 activation="relu", dropout=0.0):
        super().__init__()
        if isinstance(hidden, int):
            hidden = [hidden] * (1 if layers is None else layers)
        elif layers is not None and layers != len(hidden):
            raise DeepselfError(f"model args layers: {layers} layers but {len(hidden)} sizes in hidden")
        sizes = [n_chans * (n_freqs or 1) * n_times, *hidden]
        blocks = [nn.Flatten()]
        for size_in, size_out in zip(sizes, sizes[1:]):
            blocks += [nn.Linear(size_in, size_out), ACTIVATIONS[activation](), nn.Dropout(dropout)]
        blocks.append(nn.Linear(sizes[-1], n_outputs))
        self.net = nn.Sequential(*blocks)

    def forward(self, x):
        return self.net(x)
