"""MultiRocket, MiniRocket's stronger sibling, as a deepself model: a fitted transform plus a linear head.

MultiRocket (Tan, Dempster, Bergmeir & Webb, "MultiRocket: multiple pooling operators and
transformations for fast and effective time series classification", Data Mining and Knowledge
Discovery 36, 2022) convolves the signal and its first difference with MiniRocket's 84 kernels,
each at its own dilations and biases, and reads out four statistics of each convolution against
each bias instead of one: the proportion of positive values (PPV), the longest stretch of
positive values (LSPV), the mean of positive values (MPV) and the mean of their indices (MIPV).
With 10,000 kernels (the default of aeon's MultiRocketClassifier) that is 2 x 4 x 9,996 = 79,968
features.

:meth:`MultiRocket.fit_features` fits the dilations, biases and channel combinations with aeon's
``MultiRocket`` on the fit part of a fold; they are kept as torch buffers, so a checkpoint rebuilds
the model for ``predict`` without pickles, and :meth:`forward_features` computes aeon's transform
in torch, feature for feature in aeon's order (the test suite compares both). Three details follow
aeon, not the paper, so that the features are aeon's:

- the MPV sums ``value + bias`` over the positive values (not ``value - bias``);
- on the differenced series the four taps left of the centre sit one sample nearer to it than the
  dilation says, and a multichannel signal's differences are summed over the channel combinations
  drawn for the signal itself;
- the LSPV is the longest run between two values below the bias (or the ends), as aeon counts it.

The head is MiniRocket's (:class:`deepself.models.rocket.RocketHead`: aeon's standardised ridge
classifier with a softmax temperature, or ``head: logistic``); the trainer fits it as a probe.
"""

from __future__ import annotations

import functools
import logging

import numpy as np
import torch

from deepself.errors import DeepselfError
from deepself.models.registry import Positive, register_model
from deepself.models.rocket import (KERNEL_LENGTH, KERNELS, Head, Kernels, Rocket, check_kernel_args, dilated_sums,
                                    fit_dilations, set_combinations)

STATISTICS = ("ppv", "lspv", "mpv", "mipv")  # aeon's order of the four blocks of each series' features

log = logging.getLogger(__name__)


@functools.cache
def aeon_functions() -> tuple | None:
    """aeon's compiled MultiRocket transforms ``(_transform_uni, _transform_multi, indices)``, or None.

    They are aeon's private API (aeon >= 1.0 has them): a release that renames them must not break
    ``multirocket``, so without them the CPU runs the torch code too (same features, ~5x slower),
    and says so once.
    """
    try:
        from aeon.transformations.collection.convolution_based import _multirocket as aeon

        return aeon._transform_uni, aeon._transform_multi, aeon.MultiRocket._indices
    except (ImportError, AttributeError) as err:
        log.warning("multirocket: aeon's compiled transform is not where aeon 1.x keeps it (%s); the CPU computes "
                    "the same features with torch instead, about 5x slower", err)
        return None


def pooled(values: torch.Tensor, biases: torch.Tensor, sort: bool | None = None) -> torch.Tensor:
    """The four statistics of convolutions ``values`` (K, B, L) against ``biases`` (K, F): (4, B, K, F).

    As aeon computes them: PPV = count(v > b) / L; LSPV = the longest distance between consecutive
    indices with v < b, counting from index 0 and to index L - 1; MPV = the mean of v + b over
    v > b (0 if none); MIPV = the mean index of v > b (-1 if none).

    The LSPV needs each index's previous index below the bias: a running maximum (``cummax``),
    or, while torch traces the model for export (``sort`` None: when compiling), a sort of those
    indices, since ONNX has no running maximum. Both give the same values; the sort is several
    times slower on a CPU.
    """
    if sort is None:
        sort = torch.compiler.is_compiling()
    n_kernels, batch, length = values.shape
    index = torch.arange(length, device=values.device)
    out = values.new_empty(4, n_kernels, batch, biases.shape[1], dtype=torch.float64)
    for f in range(biases.shape[1]):
        bias = biases[:, f, None, None]
        above, below = values > bias, values < bias
        count = above.sum(-1)
        some = count > 0
        out[0, :, :, f] = count / length
        if sort:  # the indices below the bias in order (then `length`), each minus the one before
            ordered = torch.where(below, index, length).sort(-1).values
            before = torch.cat([torch.zeros_like(ordered[..., :1]), ordered[..., :-1]], dim=-1)
            stretch = torch.where(ordered < length, ordered - before, 0).amax(-1)
            last = torch.where(below, index, 0).amax(-1)
        else:  # the last index below the bias up to each index (0 before the first, as aeon starts)
            running = torch.where(below, index, 0).cummax(-1).values
            before = torch.cat([torch.zeros_like(running[..., :1]), running[..., :-1]], dim=-1)
            stretch = torch.where(below, index - before, 0).amax(-1)
            last = running[..., -1]
        out[1, :, :, f] = torch.maximum(stretch, length - 1 - last)
        total = torch.where(above, values + bias, 0.0).sum(-1, dtype=torch.float64)
        out[2, :, :, f] = torch.where(some, total / count.clamp_min(1), 0.0)
        mean_index = torch.where(above, index, 0).sum(-1, dtype=torch.float64) / count.clamp_min(1)
        out[3, :, :, f] = torch.where(some, mean_index, -1.0)
    return out.permute(0, 2, 1, 3)


@register_model("multirocket", inputs=("1d",))
class MultiRocket(Rocket):
    """MultiRocket features (multivariate) and a linear classifier on them.

    Parameters
    ----------
    n_chans, n_freqs, n_times, n_outputs
        Input geometry (signals only: ``n_freqs`` is None) and number of classes.
    n_kernels
        MultiRocket's kernels per series (aeon's n_kernels), rounded down to a multiple of 84; each gives 4
        features for the signal and 4 for its first difference: 10000 (aeon's MultiRocketClassifier's
        default) gives 79968.
    %(max_dilations_per_kernel)s
    %(rocket_head)s

    Notes
    -----
    Until :meth:`fit_features` has run, the biases are zero and every kernel sees channel 0 only;
    the trainer calls it on the training part of the fold before anything else uses the model.

    References
    ----------
    MultiRocket (Tan, Dempster, Bergmeir & Webb, Data Min. Knowl. Disc. 2022), aeon's implementation
    """

    arch = "multirocket"
    label = "MultiRocket"

    def __init__(self, n_chans, n_freqs, n_times, n_outputs, *, n_kernels: Kernels = 10_000,
                 max_dilations_per_kernel: Positive = 32, head: Head = "ridge"):
        super().__init__()
        if n_times < KERNEL_LENGTH + 1:
            raise DeepselfError(f"model arch multirocket: signals of {n_times} samples, MultiRocket's kernels "
                                f"need at least {KERNEL_LENGTH + 1} (its differenced series, one shorter, at least "
                                f"{KERNEL_LENGTH})")
        check_kernel_args(n_kernels, max_dilations_per_kernel)
        self.n_kernels, self.max_dilations_per_kernel = n_kernels, max_dilations_per_kernel
        per_kernel = n_kernels // len(KERNELS)
        self.n_chans, self.n_times = n_chans, n_times
        self._schedules = []  # the signal's, then its difference's: (dilation, features) as Python ints
        for series, length in (("", n_times), ("diff_", n_times - 1)):
            dilations, per_dilation = fit_dilations(length, per_kernel, max_dilations_per_kernel)
            self.register_buffer(f"{series}dilations", torch.from_numpy(dilations))
            self.register_buffer(f"{series}n_features_per_dilation", torch.from_numpy(per_dilation))
            self.register_buffer(f"{series}biases", torch.zeros(len(KERNELS) * int(per_dilation.sum())))
            self._schedules.append(list(zip(dilations.tolist(), per_dilation.tolist(), strict=True)))
        self.n_per_series = len(KERNELS) * per_kernel
        self.n_features = 2 * len(STATISTICS) * self.n_per_series
        n_combinations = len(KERNELS) * len(self._schedules[0])
        if n_chans > 1 and len(self._schedules[1]) > len(self._schedules[0]):
            # aeon sums the differences over the signal's combinations: it would read past them
            raise DeepselfError(f"model arch multirocket: {n_chans}-channel signals of {n_times} samples give "
                                "their difference more dilations than the signal; pad the signals by a sample")
        self._register_kernel_tables(n_combinations, n_chans)
        self._register_head(n_outputs, head)

    @torch.no_grad()
    def fit_features(self, x: np.ndarray | torch.Tensor, seed: int) -> None:
        """Fit the transform on the training signals ``x`` (N, C, T): aeon's MultiRocket, kept as buffers.

        Only the training part of a fold may be passed: the biases are quantiles of its convolutions.
        ``seed`` is aeon's ``random_state``.
        """
        from aeon.transformations.collection.convolution_based import MultiRocket as AeonMultiRocket

        aeon = AeonMultiRocket(n_kernels=self.n_kernels, max_dilations_per_kernel=self.max_dilations_per_kernel,
                               n_jobs=1, random_state=seed).fit(self._fit_input(x))
        for series, parameters in (("", aeon.parameter), ("diff_", aeon.parameter1)):
            dilations, per_dilation, biases = parameters[-3:]
            if not (np.array_equal(dilations, getattr(self, f"{series}dilations").numpy())
                    and np.array_equal(per_dilation, getattr(self, f"{series}n_features_per_dilation").numpy())):
                raise DeepselfError(f"model arch multirocket: aeon chose dilations {dilations.tolist()} "
                                    f"({per_dilation.tolist()} features each), this model was built for "
                                    f"{getattr(self, f'{series}dilations').tolist()}")
            getattr(self, f"{series}biases").copy_(torch.from_numpy(np.asarray(biases, dtype=np.float32)))
        if self.n_chans > 1:
            set_combinations(self, *aeon.parameter[:2])

    def _series_features(self, x: torch.Tensor, schedule, biases: torch.Tensor, left_shift: int) -> torch.Tensor:
        """The four blocks of one series' features: (B, 4, n_per_series), each block in aeon's order."""
        n = len(KERNELS)
        blocks, feature = [], 0
        for j, dilation, n_per_kernel, summed in dilated_sums(x, schedule, self.combination_channels,
                                                             self.combination_sizes, left_shift):
            # every other kernel (alternating with the dilation) reads only the part it covers unpadded
            padding = (KERNEL_LENGTH - 1) * dilation // 2
            stats = torch.empty(4, x.shape[0], n, n_per_kernel, dtype=torch.float64, device=x.device)
            b = biases[feature : feature + n * n_per_kernel].view(n, n_per_kernel)
            full, cropped = slice(j % 2, None, 2), slice((j + 1) % 2, None, 2)
            stats[:, :, full] = pooled(summed[full], b[full])
            stats[:, :, cropped] = pooled(summed[cropped, :, padding : x.shape[-1] - padding], b[cropped])
            blocks.append(stats.reshape(4, x.shape[0], -1))
            feature += n * n_per_kernel
        return torch.cat(blocks, dim=2).permute(1, 0, 2)

    def _aeon_parameters(self) -> tuple[tuple, tuple]:
        """The buffers as the parameter tuples of aeon's compiled transform."""
        series = []
        for prefix in ("", "diff_"):
            series.append((getattr(self, f"{prefix}dilations").numpy().astype(np.int32),
                           getattr(self, f"{prefix}n_features_per_dilation").numpy().astype(np.int32),
                           getattr(self, f"{prefix}biases").numpy().astype(np.float32)))
        if self.n_chans == 1:
            return series[0], series[1]
        sizes = self.combination_sizes.numpy().astype(np.int32)
        table = self.combination_channels.numpy()
        channels = np.concatenate([table[i, :size] for i, size in enumerate(sizes)]).astype(np.int32)
        return (sizes, channels, *series[0]), (sizes, channels, *series[1])

    def forward_features(self, x: torch.Tensor) -> torch.Tensor:
        """MultiRocket's features of signals (B, C, T): (B, n_features) float32, in aeon's order.

        The signal's PPV, LSPV, MPV and MIPV blocks, then its difference's. On the CPU, aeon's own
        compiled transform computes them from the buffers (5.4x faster on one thread than the torch
        code, which runs one pass over the convolutions per statistic); elsewhere, while torch
        traces the model for export, and where aeon no longer has that transform
        (:func:`aeon_functions`), the torch code below, whose features equal aeon's
        (tests/models/test_multirocket.py). Memory of the torch code: two (84, B, C, T) convolution
        buffers and a few (42, B, T) temporaries per bias; the caller's batch size bounds them.
        """
        x = x.float()
        if (x.device.type == "cpu" and not torch.compiler.is_compiling() and not torch.jit.is_tracing()
                and aeon_functions() is not None):
            return torch.from_numpy(self._aeon_transform(x.detach().numpy()))
        return self.torch_features(x)

    def torch_features(self, x: torch.Tensor) -> torch.Tensor:
        """The features computed by torch alone (any device; what export traces)."""
        x = x.float()
        signal = self._series_features(x, self._schedules[0], self.biases, 0)
        difference = self._series_features(x[..., 1:] - x[..., :-1], self._schedules[1], self.diff_biases, 1)
        features = torch.cat([signal.reshape(x.shape[0], -1), difference.reshape(x.shape[0], -1)], dim=1)
        return torch.nan_to_num(features.float())

    def _aeon_transform(self, x: np.ndarray) -> np.ndarray:
        """aeon's compiled MultiRocket transform of ``x`` (B, C, T) with this model's fitted parameters."""
        import numba

        transform_uni, transform_multi, indices = aeon_functions()
        parameters, parameters1 = self._aeon_parameters()
        threads = numba.get_num_threads()
        numba.set_num_threads(max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS)))
        try:
            if self.n_chans == 1:
                signal = np.ascontiguousarray(x[:, 0])
                out = transform_uni(signal, np.diff(signal, 1), parameters, parameters1, len(STATISTICS), indices,
                                    None)
            else:
                out = transform_multi(np.ascontiguousarray(x), np.diff(x, 1), parameters, parameters1,
                                      len(STATISTICS), indices, None)
        finally:
            numba.set_num_threads(threads)
        return np.nan_to_num(out)
