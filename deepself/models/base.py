"""The interface every model family offers, and the capabilities it declares.

Every model is a :class:`Model`: as timm's models, ``forward_features(x)`` is the embedding (B, D),
``forward_head(x, pre_logits=False)`` the head on it (``pre_logits=True`` stops before the last
linear layer, :meth:`Model.get_classifier`), and ``forward`` is the two in turn. What a family can
do is declared on its class, as aeon declares an estimator's tags, and the trainer reads those
declarations instead of probing attributes:

- ``train_mode``: ``"probe"`` when the model trains as a head fitted on frozen features (one
  embedding pass, no epochs, no development split: :attr:`Model.fits_a_head`); a pretrained
  network sets it from its ``train_mode`` arg, the rockets always.
- ``fitted_transform``: ``forward_features`` holds state that :meth:`Model.fit_features` fits on the
  training part of a fold (the rockets' biases and channel draws), so a fold's embeddings are its own.

:meth:`Model.parameter_groups` gives the optimiser's groups and :meth:`Model.fit_head` fits the
head of a probe on the embeddings (:mod:`deepself.training.probe`); families override what differs.
"""

from __future__ import annotations

import numpy as np
import torch
from torch import nn


class Model(nn.Module):
    """Base of every registered model: timm's forward interface and aeon-style declared capabilities."""

    train_mode: str = "finetune"
    fitted_transform: bool = False

    @property
    def fits_a_head(self) -> bool:
        """Whether training fits a head on frozen features (``train_mode`` probe) instead of running epochs."""
        return self.train_mode == "probe"

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The embedding (B, D) of a batch of inputs."""
        raise NotImplementedError

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Logits from embeddings; with ``pre_logits`` the input of :meth:`get_classifier` instead."""
        raise NotImplementedError

    def get_classifier(self) -> nn.Module:
        """The last layer, which maps ``forward_head(x, pre_logits=True)`` to the logits."""
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.forward_head(self.forward_features(x))

    def fit_features(self, x: np.ndarray | torch.Tensor, seed: int) -> None:
        """Fit the transform on the training part's inputs ``x`` (families with ``fitted_transform``)."""
        raise NotImplementedError(f"{type(self).__name__} has no fitted transform")

    def parameter_groups(self, lr: float) -> list[dict]:
        """Optimiser parameter groups for the base learning rate ``lr``: every parameter at ``lr``."""
        return [{"params": list(self.parameters()), "lr": lr}]

    def fit_head(self, embeddings: torch.Tensor, part, n_classes: int, *, balanced: bool = False,
                 seed: int = 0) -> tuple[list, dict, np.ndarray]:
        """Fit :meth:`get_classifier` on the ``embeddings`` of the training part ``part`` (a probe):
        :func:`deepself.training.probe.fit`, a logistic regression with C chosen by cross-validation."""
        from deepself.training import probe  # imported here: probe imports scikit-learn's parts when it fits

        return probe.fit(self.get_classifier(), embeddings, part, n_classes, balanced=balanced, seed=seed)
