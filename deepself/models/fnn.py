"""Fully connected network on the flattened input (DeepSELF's FNN)."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import nn

from deepself.errors import DeepselfError
from deepself.models.base import Model
from deepself.models.registry import ACTIVATIONS, Activation, NonNegative, Positive, Probability, register_model


@register_model("fnn", inputs=("1d", "2d"))
class FNN(Model):
    """Flatten, then ``hidden`` fully connected layers with activation and dropout, then the output layer.

    Parameters
    ----------
    hidden
        Nodes of each hidden layer (a list), or of every layer when `layers` is set.
    layers
        Number of hidden layers when hidden is one number (null = len(hidden)).
    %(activation)s
    dropout
        Dropout probability after each hidden layer.

    References
    ----------
    DeepSELF FNN (Koike et al., 2020)
    """

    def __init__(self, n_chans, n_freqs, n_times, n_outputs, *, hidden: Sequence[Positive] | Positive = (128, 64),
                 layers: NonNegative | None = None, activation: Activation = "relu", dropout: Probability = 0.0):
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

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The output of the last hidden layer (after its dropout); the flattened input without one."""
        for layer in self.net[:-1]:
            x = layer(x)
        return x

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        return x if pre_logits else self.net[-1](x)

    def get_classifier(self) -> nn.Linear:
        return self.net[-1]
