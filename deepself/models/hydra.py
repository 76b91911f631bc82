"""Hydra, and Hydra beside MultiRocket, as deepself models: a fixed transform plus a fitted ridge head.

Hydra (Dempster, Schmidt & Webb, "Hydra: competing convolutional kernels for fast and effective
time series classification", Data Mining and Knowledge Discovery 37, 2023) convolves the signal
and its first difference with random kernels of length 9 (zero-mean, unit L1 norm) arranged in
``n_groups`` groups of ``n_kernels`` at dilations 1, 2, 4, ... up to the signal's length. At
every time step the kernels of a group compete: the one with the largest response adds that
response to its count, the one with the smallest adds one to its own. The counts are the
features: ``dilations x 2 series x 2 counts x n_groups / 2 x n_kernels`` (6,144 on 427 samples).
For multichannel signals each group sums a random draw of channels (half the channels, 2 to
``max_num_channels``) before its kernels see them. The transform needs no data: the kernels and
channel draws come from ``random_state`` alone, in the order aeon's ``HydraTransformer`` draws
them with torch, so that the features are aeon's (the test suite compares both).

The head is aeon's ``HydraClassifier``'s: the square roots of the positive counts, scaled by
Hydra's sparse scaler (centred and divided by their standard deviation where a count is
non-zero, zero where it is zero), and a ridge classifier with alpha chosen by leave-one-out
cross-validation over ``np.logspace(-3, 3, 10)``, with the softmax temperature of MiniRocket's
head (:class:`deepself.models.rocket.RocketHead`, its ``sparse`` features;
:func:`deepself.training.ridge.fit_ridge`).

``multirocket_hydra`` is aeon's ``MultiRocketHydraClassifier``: Hydra's sparse-scaled features
and MultiRocket's standardised ones side by side under one ridge (the strongest of the
convolution-based classifiers in Middlehurst, Schäfer & Bagnall's 2024 bake-off after HIVE-COTE 2).
"""

from __future__ import annotations

from typing import Annotated

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from deepself.errors import DeepselfError
from deepself.models.multirocket import MultiRocket
from deepself.models.registry import Positive, Range, register_model, share_docs
from deepself.models.rocket import KERNEL_LENGTH, Head, Kernels, Rocket

AtLeastTwo = Annotated[int, Range(2)]

share_docs("""
hydra_head: head
    The classifier on the features: ridge (aeon's: Hydra's square-rooted counts scaled by its sparse scaler,
    MultiRocket's features standardised, RidgeClassifierCV over np.logspace(-3, 3, 10) with leave-one-out
    cross-validation, or grouped 5-fold over recordings with windows or sheet groups; fitted on the whole
    training part; its decision values turned into probabilities by a softmax temperature fitted on the
    out-of-sample ones) or logistic (the probes' logistic regression, C by 5-fold cross-validation over the
    training part).
""")


def hydra_dilations(n_times: int) -> list[int]:
    """Hydra's dilations for signals of ``n_times`` samples: 1, 2, 4, ... while 8 d <= n_times - 1."""
    return [2**i for i in range(int(np.log2((n_times - 1) / (KERNEL_LENGTH - 1))) + 1)]


class HydraTransform(nn.Module):
    """Hydra's transform of signals (B, C, T) into counts (B, n_features); its kernels are buffers.

    ``weights`` is (dilations, series, n_kernels x groups per series, 1, 9): the first series is
    the signal, the second its first difference (one series alone when ``n_groups`` is 1).
    ``channels`` is (dilations, series, groups per series, channels per group): the channels each
    group sums (multichannel signals only).
    """

    def __init__(self, n_chans: int, n_times: int, n_kernels: int, n_groups: int, max_num_channels: int):
        super().__init__()
        if n_times < KERNEL_LENGTH:
            raise DeepselfError(f"model arch hydra: signals of {n_times} samples, Hydra's kernels need at least "
                                f"{KERNEL_LENGTH}")
        if n_kernels < 2 or n_groups < 1 or max_num_channels < 2:
            raise DeepselfError(f"model args n_kernels, n_groups, max_num_channels: {n_kernels}, {n_groups}, "
                                f"{max_num_channels}; Hydra's groups need at least 2 kernels, 1 group, 2 channels")
        self.n_chans, self.k = n_chans, n_kernels
        self.dilations = hydra_dilations(n_times)  # Python ints: the forward loops over them
        self.n_series = min(2, n_groups)
        self.h = n_groups // self.n_series  # groups per series
        self.per_group = int(np.clip(n_chans // 2, 2, max_num_channels))
        self.register_buffer("weights", torch.zeros(len(self.dilations), self.n_series, n_kernels * self.h, 1,
                                                    KERNEL_LENGTH))
        self.register_buffer("channels", torch.zeros(len(self.dilations), self.n_series, self.h, self.per_group,
                                                     dtype=torch.int64))
        self.n_features = len(self.dilations) * self.n_series * 2 * self.h * n_kernels

    @torch.no_grad()
    def draw(self, seed: int) -> None:
        """The random kernels (normal, then zero-mean and unit L1 norm) and channel draws of ``seed``,
        drawn in aeon's order from a torch generator seeded as ``torch.manual_seed(seed)`` would be."""
        generator = torch.Generator().manual_seed(int(seed))
        weights = torch.randn(self.weights.shape, generator=generator)
        weights = weights - weights.mean(-1, keepdim=True)
        self.weights.copy_(weights / weights.abs().sum(-1, keepdim=True))
        for d in range(len(self.dilations)):
            self.channels[d] = torch.randint(0, self.n_chans, self.channels.shape[1:], generator=generator)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.float()
        batch = x.shape[0]
        series = [x, torch.diff(x)] if self.n_series == 2 else [x]
        counts = []
        for d, dilation in enumerate(self.dilations):
            padding = (KERNEL_LENGTH - 1) * dilation // 2
            for s, signal in enumerate(series):
                if self.n_chans > 1:  # each group sums its own channels: one grouped convolution
                    response = F.conv1d(signal[:, self.channels[d, s]].sum(2), self.weights[d, s], dilation=dilation,
                                        padding=padding, groups=self.h)
                else:
                    response = F.conv1d(signal, self.weights[d, s], dilation=dilation, padding=padding)
                response = response.view(batch, self.h, self.k, -1)
                # the winning kernel of each group at each step adds its response; the losing one adds 1
                top, winner = response.max(2)
                bottom, loser = response.min(2)
                counts.append(torch.zeros(batch, self.h, self.k, device=x.device).scatter_add_(-1, winner, top))
                counts.append(torch.zeros(batch, self.h, self.k, device=x.device)
                              .scatter_add_(-1, loser, torch.ones_like(bottom)))
        return torch.cat(counts, 1).view(batch, -1)


def mark_sparse(model: Rocket, n_sparse: int) -> None:
    """The first ``n_sparse`` features of ``model`` are Hydra's: its ridge head scales them with the sparse scaler."""
    if model.head_kind == "ridge":
        model.head.sparse[:n_sparse] = True


def sparse_inputs(counts: torch.Tensor) -> torch.Tensor:
    """The square roots of the positive counts, what Hydra's sparse scaler centres and scales."""
    return counts.clamp_min(0).sqrt()


@register_model("hydra", inputs=("1d",))
class Hydra(Rocket):
    """Hydra's counts (univariate or multivariate) and a ridge classifier on them.

    Parameters
    ----------
    n_chans, n_freqs, n_times, n_outputs
        Input geometry (signals only: ``n_freqs`` is None) and number of classes.
    n_kernels
        Kernels in each of Hydra's groups (aeon's and the paper's default, 8).
    n_groups
        Groups at each dilation, half on the signal and half on its first difference (default 64).
    max_num_channels
        Most channels each group sums over, for multichannel signals (default 8).
    %(hydra_head)s

    References
    ----------
    Hydra (Dempster, Schmidt & Webb, Data Min. Knowl. Disc. 2023), aeon's HydraClassifier
    """

    arch = "hydra"
    label = "Hydra"

    def __init__(self, n_chans, n_freqs, n_times, n_outputs, *, n_kernels: AtLeastTwo = 8, n_groups: Positive = 64,
                 max_num_channels: AtLeastTwo = 8, head: Head = "ridge"):
        super().__init__()
        self.hydra = HydraTransform(n_chans, n_times, n_kernels, n_groups, max_num_channels)
        self.n_chans, self.n_times = n_chans, n_times
        self.n_features = self.hydra.n_features
        self._register_head(n_outputs, head)
        mark_sparse(self, self.n_features)

    @torch.no_grad()
    def fit_features(self, x: np.ndarray | torch.Tensor, seed: int) -> None:
        """Draw the kernels of ``seed`` (aeon's ``random_state``); ``x`` is only checked: Hydra fits nothing to data."""
        self._fit_input(x)
        self.hydra.draw(seed)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """The square roots of Hydra's positive counts of signals (B, C, T): (B, n_features) float32."""
        return sparse_inputs(self.hydra(x))


@register_model("multirocket_hydra", inputs=("1d",))
class MultiRocketHydra(MultiRocket):
    """Hydra's and MultiRocket's features side by side, one ridge classifier on both (aeon's MR-Hydra).

    Parameters
    ----------
    n_chans, n_freqs, n_times, n_outputs
        Input geometry (signals only) and number of classes.
    n_kernels
        MultiRocket's kernels per series (aeon's n_kernels), rounded down to a multiple of 84: 6250 (the
        default of aeon's MultiRocket transform, which its MultiRocketHydraClassifier keeps) gives 49728
        features.
    max_dilations_per_kernel
        Most dilations of each of MultiRocket's 84 kernels (aeon's default, 32).
    hydra_kernels
        Kernels in each of Hydra's groups (8).
    hydra_groups
        Hydra's groups at each dilation, half on the signal and half on its first difference (64).
    max_num_channels
        Most channels each Hydra group sums over, for multichannel signals (default 8).
    %(hydra_head)s

    References
    ----------
    MultiRocket-Hydra (Dempster et al. 2023), aeon's MultiRocketHydraClassifier
    """

    arch = "multirocket_hydra"
    label = "MultiRocket-Hydra"

    def __init__(self, n_chans, n_freqs, n_times, n_outputs, *, n_kernels: Kernels = 6250,
                 max_dilations_per_kernel: Positive = 32, hydra_kernels: AtLeastTwo = 8, hydra_groups: Positive = 64,
                 max_num_channels: AtLeastTwo = 8, head: Head = "ridge"):
        self._hydra_args = (hydra_kernels, hydra_groups, max_num_channels)
        super().__init__(n_chans, n_freqs, n_times, n_outputs, n_kernels=n_kernels,
                         max_dilations_per_kernel=max_dilations_per_kernel, head=head)

    def _register_head(self, n_outputs: int, head: str) -> None:
        """MultiRocket's head, widened by Hydra's features, which come first (as in aeon's concatenation)."""
        self.hydra = HydraTransform(self.n_chans, self.n_times, *self._hydra_args)
        self.n_multirocket = self.n_features
        self.n_features = self.hydra.n_features + self.n_multirocket
        super()._register_head(n_outputs, head)
        mark_sparse(self, self.hydra.n_features)

    @torch.no_grad()
    def fit_features(self, x: np.ndarray | torch.Tensor, seed: int) -> None:
        """MultiRocket fitted on ``x`` (aeon, ``random_state`` seed) and Hydra's kernels drawn from the same seed."""
        super().fit_features(x, seed)
        self.hydra.draw(seed)

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """Hydra's (square roots of positive counts), then MultiRocket's features: (B, n_features) float32."""
        return torch.cat([sparse_inputs(self.hydra(x)), super().forward_features(x)], dim=1)
