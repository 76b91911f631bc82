"""MiniRocket, the classical baseline, as a deepself model: a fitted transform plus a linear head.

MiniRocket (Dempster, Schmidt & Webb, "MINIROCKET: A very fast (almost) deterministic transform
for time series classification", KDD 2021) convolves the signal with 84 fixed kernels of length 9
(weights -1 and 2) at a range of dilations and reads out the proportion of positive values (PPV)
of each convolution against several biases. The biases, and for multichannel input the channels
each kernel sums over, are drawn from the training data: :meth:`MiniRocket.fit_features` fits
them with aeon's ``MiniRocket`` on the fit part of a fold. Everything fitted is kept as torch
buffers (dilations, features per dilation, channel combinations, biases), so a checkpoint
rebuilds the model for ``predict`` and ``export`` without pickles, and :meth:`forward_features`
computes aeon's transform in torch from those arrays (the test suite compares both on random
data). The head (:class:`RocketHead`) is aeon's classifier: the features standardised, a ridge
classifier with alpha chosen by leave-one-out cross-validation over ``np.logspace(-3, 3, 10)``,
fitted on the whole training part of the fold, plus a softmax temperature fitted on the ridge's
out-of-sample decision values, so that MiniRocket's class probabilities are calibrated and fuse
with the deep models' (:func:`deepself.probe.fit_ridge`). The trainer fits it as a probe
(``train_mode = "probe"``: the transform runs once per sample, then the head learns from the
features).

Signals of different lengths are zero-padded by ingest to one length (the longest, or
``length_s``) before they reach the model; aeon's unequal-length MiniRocket is not used.
"""

from __future__ import annotations

from itertools import combinations
from typing import Annotated, Literal

import numpy as np
import torch
from torch import nn

from deepself.errors import DeepselfError
from deepself.models.base import Model
from deepself.models.registry import Positive, Range, register_model, share_docs

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
    scaler: zero where the feature is zero (:class:`deepself.probe.FeatureScaler`). Until fitted:
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
        :class:`deepself.probe.Part`): :func:`deepself.probe.fit_ridge`, or with ``head: logistic``
        :func:`deepself.probe.fit` into its linear layer (identity scaling, temperature 1)."""
        from deepself import probe

        if self.head_kind == "logistic":
            self.head.reset_scaling()
            return probe.fit(self.head.linear, embeddings, part, n_classes, balanced=balanced, seed=seed)
        return probe.fit_ridge(self.head, embeddings, part, n_classes, balanced=balanced, seed=seed,
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


@register_model("minirocket", inputs=("1d",))
class MiniRocket(Rocket):
    """MiniRocket features (multivariate) and a linear classifier on them.

    Parameters
    ----------
    n_chans, n_freqs, n_times, n_outputs
        Input geometry (signals only: ``n_freqs`` is None) and number of classes.
    n_kernels
        MiniRocket's number of features (aeon's n_kernels), rounded down to a multiple of 84: 10000 gives
        9996.
    %(max_dilations_per_kernel)s
    %(rocket_head)s

    Notes
    -----
    Until :meth:`fit_features` has run, the biases are zero and every kernel sees channel 0 only;
    the trainer calls it on the training part of the fold before anything else uses the model.

    References
    ----------
    MiniRocket (Dempster, Schmidt & Webb, KDD 2021), aeon's implementation
    """

    arch = "minirocket"
    label = "MiniRocket"

    def __init__(self, n_chans, n_freqs, n_times, n_outputs, *, n_kernels: Kernels = 10_000,
                 max_dilations_per_kernel: Positive = 32, head: Head = "ridge"):
        super().__init__()
        if n_times < KERNEL_LENGTH:
            raise DeepselfError(f"model arch minirocket: signals of {n_times} samples, MiniRocket's kernels "
                                f"need at least {KERNEL_LENGTH}")
        check_kernel_args(n_kernels, max_dilations_per_kernel)
        self.n_kernels, self.max_dilations_per_kernel = n_kernels, max_dilations_per_kernel
        dilations, per_dilation = fit_dilations(n_times, self.n_kernels // len(KERNELS), max_dilations_per_kernel)
        n_combinations = len(KERNELS) * len(dilations)
        self.n_features = len(KERNELS) * int(per_dilation.sum())
        self.register_buffer("dilations", torch.from_numpy(dilations))
        self.register_buffer("n_features_per_dilation", torch.from_numpy(per_dilation))
        self._register_kernel_tables(n_combinations, n_chans)
        self.register_buffer("biases", torch.zeros(self.n_features))
        self.n_chans, self.n_times = n_chans, n_times
        # The same as Python ints: the forward loops over them, and torch.export (ONNX) cannot read a
        # buffer's values while tracing. They follow from n_times alone; fit_features checks aeon agrees.
        self._schedule = list(zip(dilations.tolist(), per_dilation.tolist(), strict=True))
        self._register_head(n_outputs, head)

    @torch.no_grad()
    def fit_features(self, x: np.ndarray | torch.Tensor, seed: int) -> None:
        """Fit the transform on the training signals ``x`` (N, C, T): aeon's MiniRocket, kept as buffers.

        Only the training part of a fold may be passed: the biases are quantiles of its convolutions.

        Parameters
        ----------
        x
            Training signals, as the model will see them (after normalisation).
        seed
            aeon's ``random_state``: which training signal and channels each kernel's biases come from.
        """
        from aeon.transformations.collection.convolution_based import MiniRocket as AeonMiniRocket

        aeon = AeonMiniRocket(n_kernels=self.n_kernels, max_dilations_per_kernel=self.max_dilations_per_kernel,
                              n_jobs=1, random_state=seed).fit(self._fit_input(x))
        sizes, channels, dilations, per_dilation, biases = aeon.parameters
        if not (np.array_equal(dilations, self.dilations.numpy())
                and np.array_equal(per_dilation, self.n_features_per_dilation.numpy())):
            raise DeepselfError(f"model arch minirocket: aeon chose dilations {dilations.tolist()} "
                                f"({per_dilation.tolist()} features each), this model was built for "
                                f"{self.dilations.tolist()} ({self.n_features_per_dilation.tolist()})")
        set_combinations(self, sizes, channels)
        self.biases.copy_(torch.from_numpy(biases))

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """MiniRocket's PPV features of signals (B, C, T): (B, n_features) float32, in aeon's order.

        Computed with aeon's float32 operations in aeon's order, so that a convolution value that
        equals a bias compares the same way here. Memory: two (84, B, C, T) buffers, reused for
        every dilation; the caller's batch size bounds them.
        """
        x = x.float()
        batch, _, n_times = x.shape
        n = len(KERNELS)
        above = x.new_empty(n, batch, n_times)
        out, feature = [], 0
        for j, dilation, n_per_kernel, summed in dilated_sums(x, self._schedule, self.combination_channels,
                                                             self.combination_sizes):
            # Every other kernel (alternating with the dilation) reads only the part of the signal it
            # covers without padding, as MiniRocket does; -inf there never exceeds a bias.
            padding = (KERNEL_LENGTH - 1) * dilation // 2
            cropped = slice((j + 1) % 2, None, 2)
            summed[cropped, :, :padding] = -torch.inf
            summed[cropped, :, n_times - padding :] = -torch.inf
            length = torch.full((n, 1), float(n_times), dtype=torch.float64, device=x.device)
            length[cropped] = n_times - 2 * padding
            biases = self.biases[feature : feature + n * n_per_kernel].view(n, n_per_kernel)
            # Comparing into a float32 buffer and summing is several times faster than summing
            # booleans; counts below 2**24 add up exactly in float32.
            ppv = [torch.gt(summed, biases[:, f, None, None], out=above).sum(-1).to(torch.float64) / length
                   for f in range(n_per_kernel)]
            out.append(torch.stack(ppv, dim=2).float().permute(1, 0, 2).reshape(batch, -1))
            feature += n * n_per_kernel
        return torch.cat(out, dim=1)
