"""What the rockets share (MiniRocket, MultiRocket, Hydra): aeon's kernel tables, the dilated
convolutions, the fitted head and the :class:`Rocket` base class.

The 84 kernels of length 9 (Dempster, Schmidt & Webb, KDD 2021) and their dilations, the
channel-combination tables that aeon draws when it fits a transform, the convolutions summed
over those channels in aeon's float32 order (:func:`dilated_sums`), and the classifier on the
features (:class:`RocketHead`: standardised features, a ridge or logistic regression, a softmax
temperature), which the trainer fits as a probe. The models themselves are in
:mod:`deepself.models.minirocket`, :mod:`deepself.models.multirocket` and :mod:`deepself.models.hydra`.
"""

from __future__ import annotations

from itertools import combinations
from typing import Annotated, Literal

import numpy as np
import torch
from torch import nn

from deepself.errors import DeepselfError
from deepself.models.base import Model
from deepself.models.registry import Range, share_docs

KERNEL_LENGTH = 9
# The 84 kernels: the positions (of 9) that weigh 2; the other six weigh -1 (Dempster et al., 3.1.1).
KERNELS = tuple(combinations(range(KERNEL_LENGTH), 3))


def fit_dilations(n_times: int, n_features_per_kernel: int, max_dilations_per_kernel: int
                  ) -> tuple[np.ndarray, np.ndarray]:
    """Dilations and the number of biases (features) of each, as MiniRocket chooses them.

    Up to ``max_dilations_per_kernel`` dilations spaced exponentially from 1 to the largest whose
    kernel still spans the signal, ``(n_times - 1) / 8``; the features of a kernel are shared out
    among them, the smaller dilations taking the remainder (aeon's ``_fit_dilations``).

    Returns
    -------
    dilations, n_features_per_dilation
        int64 arrays of the same length.
    """
    n_dilations = min(n_features_per_kernel, max_dilations_per_kernel)
    multiplier = n_features_per_kernel / n_dilations
    max_exponent = np.log2((n_times - 1) / (KERNEL_LENGTH - 1))
    dilations, counts = np.unique(np.logspace(0, max_exponent, n_dilations, base=2).astype(np.int32),
                                  return_counts=True)
    per_dilation = (counts * multiplier).astype(np.int32)
    for i in range(n_features_per_kernel - int(per_dilation.sum())):
        per_dilation[i % len(per_dilation)] += 1
    return dilations.astype(np.int64), per_dilation.astype(np.int64)


def _shift(x: torch.Tensor, offset: int) -> torch.Tensor:
    """``out[..., t] = x[..., t + offset]``, zero where ``t + offset`` falls outside the signal."""
    out = torch.zeros_like(x)
    if offset >= 0:
        out[..., : x.shape[-1] - offset] = x[..., offset:]
    else:
        out[..., -offset:] = x[..., :offset]
    return out


def check_kernel_args(n_kernels: int, max_dilations_per_kernel: int) -> None:
    """Refuse fewer kernels than MiniRocket's 84 or no dilation (both rockets' args)."""
    if n_kernels < len(KERNELS) or max_dilations_per_kernel < 1:
        raise DeepselfError(f"model args n_kernels, max_dilations_per_kernel: {n_kernels}, "
                            f"{max_dilations_per_kernel}; at least {len(KERNELS)} and 1")


def set_combinations(model: nn.Module, sizes: np.ndarray, channels: np.ndarray) -> None:
    """Write aeon's channel combinations (``sizes`` and the flat ``channels``) into ``model``'s
    ``combination_channels`` table (one padded row per combination) and ``combination_sizes``."""
    table = torch.zeros_like(model.combination_channels)
    ends = np.cumsum(sizes)
    for combination, (end, size) in enumerate(zip(ends, sizes)):
        table[combination, :size] = torch.from_numpy(channels[end - size : end].astype(np.int64))
    model.combination_channels.copy_(table)
    model.combination_sizes.copy_(torch.from_numpy(sizes.astype(np.int64)))


def dilated_sums(x: torch.Tensor, schedule: list[tuple[int, int]], combination_channels: torch.Tensor,
                 combination_sizes: torch.Tensor, left_shift: int = 0):
    """For each dilation of ``schedule``, the 84 kernels' convolutions of ``x`` summed over their channels.

    Yields ``(j, dilation, n_per_kernel, summed)`` with ``summed`` of shape (84, B, T): aeon's
    float32 operations in aeon's order, so that a value that equals a bias compares the same way.
    The tensor is a buffer reused for the next dilation. ``left_shift`` moves the four taps left
    of the centre that many samples right (1 reproduces aeon's MultiRocket on the differenced
    series, whose left taps sit one sample nearer the centre than the dilation says).
    Memory: two (84, B, C, T) buffers; the caller's batch size bounds them.
    """
    batch, n_chans, n_times = x.shape
    alpha, gamma = -x, x + x + x  # weights -1 everywhere, +3 more where a kernel weighs 2
    n = len(KERNELS)
    # Buffers written in place for every dilation: a fresh (84, B, C, T) tensor per step costs
    # more in page faults than the arithmetic.
    conv = x.new_empty(n, batch, n_chans, n_times)
    kernel = torch.arange(n, device=x.device)
    combination = 0
    for j, (dilation, n_per_kernel) in enumerate(schedule):
        offsets = [(i - KERNEL_LENGTH // 2) * dilation + (left_shift if i < KERNEL_LENGTH // 2 else 0)
                   for i in range(KERNEL_LENGTH)]
        c_alpha = alpha
        for i, offset in enumerate(offsets):
            if i != KERNEL_LENGTH // 2:  # the centre tap is alpha itself (a shifted tap may also land on 0)
                c_alpha = c_alpha + _shift(alpha, offset)
        c_gamma = torch.stack([_shift(gamma, offset) for offset in offsets])  # (9, B, C, T)
        # KERNELS is lexicographic: kernels (a, b, c) with the same a and b are consecutive and
        # take c = b + 1, ..., 8, so each (a, b) adds c_gamma[b + 1:] to a block in one step.
        # Sums in aeon's order: ((c_alpha + g_a) + g_b) + g_c.
        start = 0
        for a, b in combinations(range(KERNEL_LENGTH - 1), 2):
            end = start + KERNEL_LENGTH - 1 - b
            conv[start:end] = c_gamma[a]
            conv[start:end] += c_alpha
            conv[start:end] += c_gamma[b]
            conv[start:end] += c_gamma[b + 1 :]
            start = end
        channels = combination_channels[combination : combination + n]
        sizes = combination_sizes[combination : combination + n]
        if n_chans == 1:
            summed = conv[:, :, 0]
        else:
            summed = conv[kernel, :, channels[:, 0]]  # (84, B, T)
            for slot in range(1, channels.shape[1]):
                picked = conv[kernel, :, channels[:, slot]]
                summed = summed + torch.where((slot < sizes)[:, None, None], picked, 0.0)
        yield j, dilation, n_per_kernel, summed
        combination += n


HEADS = ("ridge", "logistic")
Head = Literal[HEADS]
Kernels = Annotated[int, Range(len(KERNELS))]

share_docs("""
max_dilations_per_kernel
    Most dilations of each of the 84 kernels (aeon's default, 32).
rocket_head: head
    The classifier on the features: ridge (aeon's: features standardised, RidgeClassifierCV over
    np.logspace(-3, 3, 10) with leave-one-out cross-validation, or grouped 5-fold over recordings with
    windows or sheet groups; fitted on the whole training part; its decision values turned into
    probabilities by a softmax temperature fitted on the out-of-sample ones) or logistic (the probes'
    logistic regression, C by 5-fold cross-validation over the training part).
""")


class RocketHead(nn.Module):
    """A rocket's classifier: ``linear((x - mean) / scale) / temperature`` of the features ``x``.

    ``mean`` and ``scale`` standardise the features, ``linear`` holds the ridge's (or the logistic
    regression's) coefficients, and the temperature turns the ridge's decision values into
    calibrated logits; all are tensors of the checkpoint, so ``predict`` and ``export`` give the
    probabilities training wrote. Features marked ``sparse`` (Hydra's) are scaled by Hydra's sparse
    scaler: zero where the feature is zero (:class:`deepself.training.ridge.FeatureScaler`). Until fitted:
    identity scaling, temperature 1, nothing sparse.
    """

    def __init__(self, n_features: int, n_outputs: int):
        super().__init__()
        self.linear = nn.Linear(n_features, n_outputs)
        self.register_buffer("mean", torch.zeros(n_features))
        self.register_buffer("scale", torch.ones(n_features))
        self.register_buffer("temperature", torch.ones(()))
        self.register_buffer("sparse", torch.zeros(n_features, dtype=torch.bool))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        scaled = torch.where(self.sparse & (x == 0), 0.0, (x - self.mean) / self.scale)
        return self.linear(scaled) / self.temperature

    def reset_scaling(self) -> None:
        """Identity scaling, temperature 1, nothing sparse (a head whose scaler is folded into ``linear``)."""
        self.mean.zero_()
        self.scale.fill_(1.0)
        self.temperature.fill_(1.0)
        self.sparse.zero_()

    def _load_from_state_dict(self, state_dict, prefix, *args, **kwargs):
        """Checkpoints written before the head had a scaler and a temperature (one ``nn.Linear`` named
        ``head``) load as that linear layer with identity scaling and temperature 1."""
        for name in ("weight", "bias"):
            if prefix + name in state_dict and prefix + "linear." + name not in state_dict:
                state_dict[prefix + "linear." + name] = state_dict.pop(prefix + name)
        if prefix + "linear.weight" in state_dict:
            for name, value in (("mean", self.mean), ("scale", self.scale), ("temperature", self.temperature),
                                ("sparse", self.sparse)):
                if prefix + name not in state_dict:
                    state_dict[prefix + name] = (torch.zeros_like(value) if name in ("mean", "sparse")
                                                 else torch.ones_like(value))
        super()._load_from_state_dict(state_dict, prefix, *args, **kwargs)


class Rocket(Model):
    """What MiniRocket and MultiRocket share: a fitted transform (``forward_features``) and a head
    (:class:`RocketHead`) that the trainer fits on the features, and aeon's kernel and
    channel-combination tables."""

    train_mode = "probe"
    fitted_transform = True
    arch = "rocket"
    label = "Rocket"

    def _register_head(self, n_outputs: int, head: str) -> None:
        """The head and how it is fitted: ``ridge`` (aeon's) or ``logistic`` (the probes' regression)."""
        if head not in HEADS:
            raise DeepselfError(f"model args head: {head!r} is not one of {list(HEADS)}")
        self.head_kind = head
        self.head = RocketHead(self.n_features, n_outputs)

    def fit_head(self, embeddings: torch.Tensor, part, n_classes: int, *, balanced: bool = False,
                 seed: int = 0) -> tuple[list, dict, np.ndarray]:
        """Fit the head on the features ``embeddings`` of the training part ``part`` (a
        :class:`deepself.training.probe.Part`): :func:`deepself.training.ridge.fit_ridge`, or with ``head: logistic``
        :func:`deepself.training.probe.fit` into its linear layer (identity scaling, temperature 1)."""
        from deepself.training import probe, ridge

        if self.head_kind == "logistic":
            self.head.reset_scaling()
            return probe.fit(self.head.linear, embeddings, part, n_classes, balanced=balanced, seed=seed)
        return ridge.fit_ridge(self.head, embeddings, part, n_classes, balanced=balanced, seed=seed,
                               sparse=self.head.sparse.cpu().numpy())

    def _register_kernel_tables(self, n_combinations: int, n_chans: int) -> None:
        """The 84 kernels and the channels each (dilation, kernel) sums over, in aeon's order (float
        sums depend on it), padded to aeon's most channels per combination, min(n_chans, 9); the
        sizes say how many count. Until fitted, every combination is channel 0 alone."""
        self.register_buffer("kernels", torch.tensor(KERNELS, dtype=torch.int64))
        self.register_buffer("combination_channels", torch.zeros(n_combinations, min(n_chans, 9), dtype=torch.int64))
        self.register_buffer("combination_sizes", torch.ones(n_combinations, dtype=torch.int64))

    def _fit_input(self, x: np.ndarray | torch.Tensor) -> np.ndarray:
        """The training signals as aeon takes them (float32 numpy), refused unless shaped as built."""
        x = x.detach().cpu().numpy() if isinstance(x, torch.Tensor) else np.asarray(x)
        if x.shape[1:] != (self.n_chans, self.n_times):
            raise DeepselfError(f"model arch {self.arch}: fitted on signals of {x.shape[1:]}, built for "
                                f"{(self.n_chans, self.n_times)}")
        return x.astype(np.float32)

    def forward_head(self, x: torch.Tensor, pre_logits: bool = False) -> torch.Tensor:
        """Class scores of the features (``pre_logits``: the features themselves, as timm's heads)."""
        return x if pre_logits else self.head(x)

    def get_classifier(self) -> RocketHead:
        """The head on the features, which the trainer fits (:meth:`fit_head`)."""
        return self.head
