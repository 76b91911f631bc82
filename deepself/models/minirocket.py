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
data). The head (:class:`deepself.models.rocket.RocketHead`) is aeon's classifier: the features standardised, a ridge
classifier with alpha chosen by leave-one-out cross-validation over ``np.logspace(-3, 3, 10)``,
fitted on the whole training part of the fold, plus a softmax temperature fitted on the ridge's
out-of-sample decision values, so that MiniRocket's class probabilities are calibrated and fuse
with the deep models' (:func:`deepself.training.ridge.fit_ridge`). The trainer fits it as a probe
(``train_mode = "probe"``: the transform runs once per sample, then the head learns from the
features).

Signals of different lengths are zero-padded by ingest to one length (the longest, or
``length_s``) before they reach the model; aeon's unequal-length MiniRocket is not used.
"""

from __future__ import annotations

import numpy as np
import torch

from deepself.errors import DeepselfError
from deepself.models.registry import Positive, register_model
from deepself.models.rocket import (KERNEL_LENGTH, KERNELS, Head, Kernels, Rocket, check_kernel_args, dilated_sums,
                                    fit_dilations, set_combinations)


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
