"""Batched feature maps in PyTorch: the numbers of the librosa / pywt references, a block at a time.

:mod:`deepself.signal.features` defines every feature by a reference function of one sample
(librosa, pywt). This module computes the same maps for a whole block ``(n, channels, time)`` at
once, on the GPU when PyTorch sees one, else on the CPU:

- spectrogram and log-Mel: frames of the centre-padded signal (librosa's padding, every
  ``pad_mode`` it accepts) times librosa's window (:func:`librosa.filters.get_window`,
  zero-padded to ``n_fft``), a real FFT, the Mel matrix of :func:`librosa.filters.mel`, and
  librosa's dB conversion (``power_to_db`` / ``amplitude_to_db``), the peak of ``ref="max"`` and
  of ``top_db`` taken per sample over all its channels, as the reference does (log-Mel also:
  the peak normalisation before the STFT, ``log10(1 + log_gain * S)`` and the final ``scale``);
- scalogram: :func:`pywt.cwt`'s algorithm. pywt convolves the signal with the integrated wavelet
  resampled at each scale (``int_psi[j][::-1]``), takes the first difference, crops the centre and
  multiplies by ``-sqrt(scale)``. Here the filter is built the same way, and the difference, the
  crop (a circular shift) and the factor are folded into its spectrum, so that one FFT of the
  signal, one product and one inverse FFT give every scale. The FFT needs only
  ``time + ceil(len(filter) / 2)`` points, not pywt's ``time + len(filter) - 1``: the samples that
  the shorter circular convolution wraps around are exactly those the crop throws away. Scales
  are grouped by the FFT length they need, so that short wavelets do not pay for long ones.

The Mel product uses only the bins where each band of 16 Mel filters is non-zero (about 8 times
fewer products than the whole matrix for 128 Mels).

Numbers: float32 in and out; the tests hold every map to the reference within 1e-4 of its peak
(and 1e-4 relative). float32 FFTs are enough for that except for dB maps without a ``top_db``
clip, whose bins at the ``amin`` floor (-100 dB: digital silence) need float64 FFTs, as librosa's
are; :func:`auto_precision` chooses, ``precision=`` overrides (float64 takes 2 to 3 times as long
as float32 for ESC-10 log-Mel on the CPU; see benchmarks/README.md).

Work: a block is cut into sub-blocks of a bounded size (:data:`MEMORY_BUDGET`). On the CPU,
``torch.get_num_threads()`` threads each compute whole sub-blocks with single-threaded
operations, rather than every operation being split across the threads. Measured on 2 cores: it
scales better on an idle machine (ESC-10 log-Mel about 1.3 ms a clip, against 2.1 ms with split
operations), and far better when other processes use the cores too, since every split operation
ends with a wait for its slowest thread (two feature jobs side by side: about 4 ms a clip, against
8 to 80 ms). While the threads run, ``torch.set_num_threads(1)`` is in force for the whole process.
"""

from __future__ import annotations

import contextlib
import ctypes
import functools
import math
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from deepself.signal.features import mel_filters

KINDS = ("spectrogram", "logmel", "scalogram")
PRECISIONS = {"float32": torch.float32, "float64": torch.float64}
# Bytes of intermediate arrays that one step (one sub-block) may hold; a larger block is cut into
# sub-blocks, so that memory does not grow with the block. On the CPU small steps are also
# faster: arrays of a few MB are recycled by the C allocator, larger ones are mapped afresh (page
# faults) each time; on the CPU each of torch.get_num_threads() threads works on its own step.
MEMORY_BUDGET = {"cpu": 16 * 2**20, "cuda": 1024 * 2**20}
# pywt.cwt's default wavelet resolution (2 ** precision points).
_CWT_PRECISION = 12
# Mel filters multiplied together with the FFT bins they span (see _mel_bands).
_MELS_PER_BAND = 16
# Scales whose FFT lengths differ by less than this factor share one FFT length.
_FFT_LENGTH_STEP = 1.2


def default_device() -> torch.device:
    """CUDA when PyTorch sees a GPU, else the CPU."""
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def auto_precision(kind: str, params: dict) -> str:
    """The cheaper precision that still gives the reference's numbers to 1e-4 of the peak.

    float32 FFTs are exact enough for linear maps, for scalograms (pywt computes them in float32
    from float32 data), for log-Mel's ``log10(1 + log_gain * S)`` and ``log(S + log_offset)``
    (near silence the first is linear in S, and the second is held by the offset) and for dB maps clipped at most 80 dB below the peak. Without that clip,
    bins down at the ``amin`` floor carry the float32 FFT's rounding, several dB there: the STFT
    then runs in float64, like librosa's.
    """
    log = params.get("log", True)
    if kind == "scalogram" or log is False or log in ("log10_1p", "offset"):
        return "float32"
    return "float32" if params["top_db"] is not None and params["top_db"] <= 80.0 else "float64"


# Largest intermediate value computed in float32: float32 ends at 3.4e38, the margin covers the
# window and Mel weights that the bound below leaves out.
_FLOAT32_SAFE = 1e30


def _overflows_float32(kind: str, x: np.ndarray, params: dict) -> bool:
    """Whether a spectrogram or log-Mel of ``x`` could exceed float32 before its logarithm.

    ``|STFT| <= n_fft * peak``, its power is that to ``power``, and a Mel band sums at most
    ``1 + n_fft // 2`` of them: a signal value of 1e30 gives powers of 1e65, which only float64
    holds (its dB value, about 650, is an ordinary float32 again).
    """
    if kind == "scalogram" or not x.size:
        return False
    peak = max(float(x.max()), -float(x.min()))
    return (params["n_fft"] * peak) ** params["power"] * (1 + params["n_fft"] // 2) > _FLOAT32_SAFE


def compute(kind: str, x: np.ndarray, sample_rate: float, params: dict, *, device=None,
            precision: str = "auto", out: np.ndarray | None = None) -> np.ndarray:
    """Compute the feature map ``kind`` for a block of samples.

    Parameters
    ----------
    kind : {"spectrogram", "logmel", "scalogram"}
        The feature, as in :data:`deepself.signal.features.FEATURES`.
    x : np.ndarray, shape (n, channels, time)
        A block of samples, every value finite.
    sample_rate : float
        Sampling rate in Hz.
    params : dict
        Complete parameters, as :func:`deepself.signal.features.check_params` returns them.
    device : str or torch.device, optional
        Where to compute; default :func:`default_device`.
    precision : {"auto", "float32", "float64"}, default "auto"
        Floating point type of the FFTs and products; "auto": float64 where float32 could
        overflow (signal values beyond about 1e12), else :func:`auto_precision`.
    out : np.ndarray, optional
        C-contiguous float32 array of the result's shape to fill and return (instead of new memory).

    Returns
    -------
    np.ndarray, float32, shape (n, channels, rows, frames)
        Sample by sample the map of the reference function.
    """
    if kind not in KINDS:
        raise ValueError(f"no batched implementation of {kind!r}; batched features: {', '.join(KINDS)}")
    if precision == "auto":
        precision = "float64" if _overflows_float32(kind, x, params) else auto_precision(kind, params)
    if precision not in PRECISIONS:
        raise ValueError(f"precision {precision!r} is not one of auto, {', '.join(PRECISIONS)}")
    device = default_device() if device is None else torch.device(device)
    dtype = PRECISIONS[precision]
    x = np.ascontiguousarray(x, dtype=np.float32)
    n, channels, n_samples = x.shape
    per_sample = channels * _bytes_per_channel(kind, n_samples, params, dtype)
    budget = MEMORY_BUDGET["cuda" if device.type == "cuda" else "cpu"]
    step = max(1, budget // max(per_sample, 1))
    function = {"spectrogram": spectrogram, "logmel": logmel, "scalogram": scalogram}[kind]
    threads = torch.get_num_threads() if device.type == "cpu" else 1
    if threads > 1 and n > 1:
        step = min(step, -(-n // threads))
    shape = (n, *_output_shape(kind, params, channels, n_samples))
    if out is None:
        out = np.empty(shape, dtype=np.float32)
    elif out.shape != shape or out.dtype != np.float32 or not out.flags.c_contiguous:
        raise ValueError(f"out must be a C-contiguous float32 array of shape {shape}, not {out.dtype} {out.shape}")
    # a float32 scalogram on the CPU is written straight into ``out`` (the largest map: 64 scales of
    # every sample; a copy of it into fresh memory took as long as computing it)
    direct = kind == "scalogram" and device.type == "cpu" and dtype == torch.float32
    if device.type == "cpu":
        _keep_freed_memory()

    def fill(start: int) -> None:
        with torch.inference_mode():
            block = torch.from_numpy(x[start : start + step]).to(device=device, dtype=dtype)
            if direct:
                scalogram(block, sample_rate, out=torch.from_numpy(out[start : start + step]), **params)
                return
            y = function(block, sample_rate, **params)
            # One copy does the transfer, the float32 cast and the (bins, frames) transposition.
            torch.from_numpy(out[start : start + step]).copy_(y)

    starts = range(0, n, step)
    if len(starts) > 1 and threads > 1:
        with _single_threaded_ops(threads), ThreadPoolExecutor(threads) as pool:
            list(pool.map(fill, starts))
    else:
        for start in starts:
            fill(start)
    return out


def _output_shape(kind: str, params: dict, channels: int, n_samples: int) -> tuple[int, ...]:
    if kind == "scalogram":
        return channels, len(params["scales"]), -(-n_samples // params["hop"])
    padded = n_samples + (2 * (params["n_fft"] // 2) if params["center"] else 0)
    if params.get("window_at") == "start":
        padded += params["n_fft"] - params["win_length"]
    frames = 1 + (padded - params["n_fft"]) // params["hop_length"]
    return channels, (1 + params["n_fft"] // 2 if kind == "spectrogram" else params["n_mels"]), frames


# glibc's mallopt parameters, and what they are set to on the CPU (see _keep_freed_memory)
_M_TRIM_THRESHOLD, _M_MMAP_THRESHOLD = -1, -3
_KEEP_FREED_BYTES, _MMAP_FROM_BYTES = 256 * 2**20, 32 * 2**20


@functools.lru_cache(maxsize=1)
def _keep_freed_memory() -> bool:
    """Let glibc keep freed memory for the next sub-block instead of handing it back to the system.

    Each sub-block allocates arrays of a few MB (ESC-10 log-Mel: 3.5 MB of frames, as much again
    of spectrum) and frees them. glibc's default returns freed memory at the top of its heap to the
    system once more than twice its (adaptive) mmap threshold is free, and the next sub-block then
    takes a page fault on every 4 KB of it again: about a third of the CPU time of a log-Mel map
    on the 2-core VM (benchmarks/README.md). Here the process keeps up to 256 MB of freed memory
    and serves allocations below 32 MB (glibc's own largest adaptive threshold) from its heap.
    Process-wide and permanent; nothing is done where the C library is not glibc.
    """
    try:
        libc = ctypes.CDLL("libc.so.6")
        return bool(libc.mallopt(_M_MMAP_THRESHOLD, _MMAP_FROM_BYTES)
                    and libc.mallopt(_M_TRIM_THRESHOLD, _KEEP_FREED_BYTES))
    except (OSError, AttributeError):
        return False


@contextlib.contextmanager
def _single_threaded_ops(threads: int):
    """Each operation on one thread while ``threads`` threads work on different sub-blocks.

    Parallel operations (PyTorch's OpenMP) wait for each other at the end of every operation; when
    other processes use the cores too (Snakemake runs jobs side by side), those waits cost more
    than the work. Independent sub-blocks, one per thread, need no waiting.
    """
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def _bytes_per_channel(kind: str, n_samples: int, params: dict, dtype) -> int:
    """Bytes of the intermediate arrays of one channel of one sample (a rough upper bound)."""
    real_size = 8 if dtype == torch.float64 else 4
    if kind == "scalogram":
        groups = _cwt_filters(params["wavelet"], tuple(params["scales"]), n_samples)
        # Per group: the product spectrum and the inverse FFT; then the map itself.
        largest = max(len(spectra) * (2 * spectra.shape[-1] + fft_length) for fft_length, _, spectra in groups)
        return real_size * (largest + len(params["scales"]) * -(-n_samples // params["hop"]))
    frames = _output_shape(kind, params, 1, n_samples)[-1]
    # Windowed frames, their complex spectrum, the power.
    return real_size * frames * (params["n_fft"] + 3 * (1 + params["n_fft"] // 2))


# --- spectrogram and log-Mel -------------------------------------------------------------------


def _periodic_hann(n: int) -> np.ndarray:
    """``scipy.signal.get_window("hann", n, fftbins=True)``, computed as scipy does (general_cosine, one
    point more, the last dropped), without scipy.signal's imports (about 2 s)."""
    if n <= 1:
        return np.ones(n)
    fac = np.linspace(-np.pi, np.pi, n + 1)
    w = np.zeros(n + 1)
    for k, a in enumerate((0.5, 0.5)):
        w += a * np.cos(k * fac)
    return w[:-1]


@functools.lru_cache(maxsize=16)
def _window(window, win_length: int, n_fft: int) -> np.ndarray:
    """librosa's STFT window: ``get_window(..., fftbins=True)`` centred in ``n_fft`` zeros.

    Hann (the default) is computed here; other windows are librosa's (scipy.signal's).
    """
    if window == "hann":
        w = _periodic_hann(win_length)
    else:
        import librosa

        w = librosa.filters.get_window(window, win_length, fftbins=True)
    before = (n_fft - win_length) // 2  # librosa.util.pad_center
    return np.pad(w, (before, n_fft - win_length - before))


@functools.lru_cache(maxsize=16)
def _mel_bands(sample_rate: float, n_fft: int, n_mels: int, fmin: float, fmax: float, htk: bool, norm):
    """librosa's Mel matrix (float32), transposed and cut into bands of Mel filters.

    Each Mel filter is non-zero on a few FFT bins only: a band of :data:`_MELS_PER_BAND`
    neighbouring filters is multiplied with just the bins where one of them is non-zero, several
    times fewer products than the whole matrix. Returns ``[(first mel, last mel + 1, first bin,
    last bin + 1, weights (bins, mels))]``; all-zero filters (librosa warns of them) get no band.
    """
    mel = mel_filters(sample_rate, n_fft, n_mels, fmin, fmax, htk, norm)  # librosa.filters.mel's numbers
    bands = []
    for first in range(0, n_mels, _MELS_PER_BAND):
        weights = mel[first : first + _MELS_PER_BAND].T
        bins = np.flatnonzero(weights.any(axis=1))
        if bins.size:
            low, high = int(bins[0]), int(bins[-1]) + 1
            bands.append((first, first + weights.shape[1], low, high, np.ascontiguousarray(weights[low:high])))
    return bands


@functools.lru_cache(maxsize=16)
def _mel_bands_on(sample_rate: float, n_fft: int, n_mels: int, fmin: float, fmax: float, htk: bool, norm,
                  dtype: torch.dtype, device: str):
    """:func:`_mel_bands` with the weights as tensors of ``dtype`` on ``device``, made once."""
    return [(first, last, low, high, torch.as_tensor(w, dtype=dtype, device=device))
            for first, last, low, high, w in _mel_bands(sample_rate, n_fft, n_mels, fmin, fmax, htk, norm)]


def _mel_basis(sample_rate: float, n_fft: int, n_mels: int, fmin: float, fmax: float, htk: bool, norm) -> np.ndarray:
    """The whole Mel matrix (n_mels, bins) that the bands of :func:`_mel_bands` hold."""
    mel = np.zeros((n_mels, 1 + n_fft // 2), dtype=np.float32)
    for first, last, low, high, weights in _mel_bands(sample_rate, n_fft, n_mels, fmin, fmax, htk, norm):
        mel[first:last, low:high] = weights.T
    return mel


def _pad(x: torch.Tensor, pad: int, mode: str) -> torch.Tensor:
    """``np.pad(x, pad, mode)`` along the last axis, for librosa's centring modes (pad < time)."""
    if mode == "constant":
        return torch.nn.functional.pad(x, (pad, pad))
    if mode == "edge":
        return torch.nn.functional.pad(x, (pad, pad), mode="replicate")
    if mode == "reflect":
        return torch.nn.functional.pad(x, (pad, pad), mode="reflect")
    if mode == "symmetric":
        return torch.cat([x[..., :pad].flip(-1), x, x[..., x.shape[-1] - pad :].flip(-1)], dim=-1)
    if mode == "linear_ramp":
        # numpy ramps linearly from 0 at the outer end towards the edge value.
        ramp = torch.arange(pad, dtype=x.dtype, device=x.device) / pad
        return torch.cat([x[..., :1] * ramp, x, x[..., -1:] * ramp.flip(0)], dim=-1)
    raise ValueError(f"pad_mode {mode!r} is not one of constant, edge, reflect, symmetric, linear_ramp")


def _centre_pad(x: torch.Tensor, n_fft: int, hop_length: int, mode: str) -> torch.Tensor:
    """librosa.stft's centring: ``n_fft // 2`` samples padded on each side.

    librosa pads the head and the tail of the signal apart, not the whole signal. For
    ``reflect`` and ``symmetric`` with ``hop_length`` above about ``n_fft / 2`` the tail it pads is
    shorter than the padding, and numpy reflects it more than once; that is reproduced here.
    """
    pad = n_fft // 2
    n_samples = x.shape[-1]
    padded = _pad(x, pad, mode)
    if mode in ("reflect", "symmetric") and pad:
        head_frames = -(-pad // hop_length)
        tail_frame = (n_samples + pad - n_fft) // hop_length + 1
        if tail_frame > head_frames and tail_frame * hop_length - pad + n_fft <= n_samples + pad:
            first = tail_frame * hop_length - pad
            index = np.pad(np.arange(first, n_samples), (0, pad), mode=mode)[-pad:]
            padded[..., n_samples + pad :] = x[..., torch.as_tensor(index, device=x.device)]
    return padded


def _stft_power(x: torch.Tensor, *, n_fft: int, hop_length: int, win_length: int, window, center: bool,
                pad_mode: str, power: float) -> torch.Tensor:
    """``|librosa.stft(x)| ** power`` of x (n, channels, time), frames first: (n, channels, frames, bins)."""
    if center:
        x = _centre_pad(x, n_fft, hop_length, pad_mode)
    window = torch.as_tensor(_window(window, win_length, n_fft), dtype=x.dtype, device=x.device)
    spectrum = torch.fft.rfft(x.unfold(-1, n_fft, hop_length) * window)
    if power == 2.0:
        parts = torch.view_as_real(spectrum).square_()
        return parts[..., 0] + parts[..., 1]
    magnitude = spectrum.abs()
    return magnitude if power == 1.0 else magnitude.pow_(power)


def _power_to_db_(S: torch.Tensor, ref, amin: float, top_db: float | None) -> torch.Tensor:
    """librosa.power_to_db of each sample of a batch (n, ...), in place; "max" and top_db per sample."""
    shape = (-1, *([1] * (S.ndim - 1)))
    peak = S.flatten(1).amax(dim=1).clamp_(min=amin).log10_().mul_(10.0)
    reference = peak if ref == "max" else 10.0 * math.log10(max(amin, abs(ref)))
    db = S.clamp_(min=amin).log10_().mul_(10.0).sub_(reference.reshape(shape) if ref == "max" else reference)
    if top_db is not None:
        # log10 is monotonic: the largest dB value is the peak's.
        db = torch.clamp_(db, min=(peak - reference - top_db).reshape(shape))
    return db


def spectrogram(x: torch.Tensor, sample_rate: float, *, n_fft: int, hop_length: int, win_length: int, window,
                center: bool, pad_mode: str, power: float, log: bool, ref, amin: float,
                top_db: float | None) -> torch.Tensor:
    """Batched :func:`deepself.signal.features.spectrogram`: x (n, channels, time) -> (n, channels, bins, frames)."""
    S = _stft_power(x, n_fft=n_fft, hop_length=hop_length, win_length=win_length, window=window,
                    center=center, pad_mode=pad_mode, power=power)
    if log and power == 1.0:
        # librosa.amplitude_to_db: power_to_db of the square, reference and floor squared too.
        S = _power_to_db_(S.square_(), ref if ref == "max" else ref**2, amin**2, top_db)
    elif log:
        S = _power_to_db_(S, ref, amin, top_db)
    return S.transpose(-1, -2)


def logmel(x: torch.Tensor, sample_rate: float, *, n_fft: int, hop_length: int, win_length: int, window,
           center: bool, pad_mode: str, window_at: str, power: float, n_mels: int, fmin: float, fmax: float,
           htk: bool, norm, peak_normalize: bool, log: str, log_gain: float, log_offset: float, ref, amin: float,
           top_db: float | None, scale: float) -> torch.Tensor:
    """Batched :func:`deepself.signal.features.logmel`: x (n, channels, time) -> (n, channels, n_mels, frames)."""
    if peak_normalize:
        peak = x.abs().flatten(1).amax(dim=1)
        x = x / peak.masked_fill_(peak == 0, 1.0).reshape(-1, 1, 1)
    if window_at == "start":  # see features.logmel: frames start where tf.signal.stft's do
        before = (n_fft - win_length) // 2
        x = torch.nn.functional.pad(x, (before, n_fft - win_length - before))
    S = _stft_power(x, n_fft=n_fft, hop_length=hop_length, win_length=win_length, window=window,
                    center=center, pad_mode=pad_mode, power=power)
    mels = torch.empty((*S.shape[:-1], n_mels), dtype=S.dtype, device=S.device)
    bands = _mel_bands_on(float(sample_rate), n_fft, n_mels, fmin, fmax, htk, norm, S.dtype, str(S.device))
    if sum(last - first for first, last, *_ in bands) < n_mels:
        mels.zero_()
    for first, last, low, high, weights in bands:
        torch.matmul(S[..., low:high], weights, out=mels[..., first:last])
    if log == "db":
        mels = _power_to_db_(mels, ref, amin, top_db)
    elif log == "offset":
        mels = mels.add_(log_offset).log_()
    else:
        mels = mels.mul_(log_gain).add_(1.0).log10_()
    return mels.mul_(scale).transpose(-1, -2)


# --- scalogram ---------------------------------------------------------------------------------


@functools.lru_cache(maxsize=8)
def _cwt_filters(wavelet: str, scales: tuple, n_samples: int):
    """Spectra of pywt.cwt's per-scale filters, with its difference, crop and -sqrt(scale) folded in.

    Returns a list of groups ``(fft_length, rows, spectra)``: the scales ``rows`` (a range when
    the scales are sorted) share one FFT length; ``spectra`` is complex128 (len(rows), bins),
    ``fft_length // 2 + 1`` bins (rfft) for a real wavelet, ``fft_length`` for a complex one.
    """
    import pywt  # only scalograms need it: other jobs start without it

    is_complex = bool(pywt.ContinuousWavelet(wavelet).complex_cwt)
    int_psi, grid = pywt.integrate_wavelet(wavelet, precision=_CWT_PRECISION)
    if is_complex:
        int_psi = np.conj(int_psi)
    # pywt.cwt casts the integrated wavelet and its grid to the data's precision (float32 here)
    # before resampling, and the resampling indices depend on it: do the same.
    int_psi = np.asarray(int_psi, dtype=np.complex64 if np.iscomplexobj(int_psi) else np.float32)
    grid = np.asarray(grid, dtype=np.float32)
    step = grid[1] - grid[0]
    filters = []
    for scale in np.asarray(scales, dtype=np.float64):
        j = (np.arange(scale * (grid[-1] - grid[0]) + 1) / (scale * step)).astype(int)
        filters.append(int_psi[j[j < int_psi.size]][::-1].astype(np.complex128 if is_complex else np.float64))
    import scipy.fft  # next_fast_len; not at the top: the spectrogram and log-Mel jobs start without scipy

    # A circular convolution of length time + ceil(L / 2) equals the linear one on the samples
    # that survive the crop (see the module docstring).
    needed = [n_samples + -(-len(h) // 2) for h in filters]
    ladder = [scipy.fft.next_fast_len(min(needed), real=not is_complex)]
    while ladder[-1] < max(needed):
        longer = max(ladder[-1] + 1, math.ceil(ladder[-1] * _FFT_LENGTH_STEP))
        ladder.append(scipy.fft.next_fast_len(longer, real=not is_complex))
    groups: dict[int, list[int]] = {}
    for row, need in enumerate(needed):
        groups.setdefault(next(size for size in ladder if size >= need), []).append(row)
    result = []
    for fft_length, rows in sorted(groups.items()):
        spectra = []
        for row in rows:
            h = filters[row]
            # pywt: conv = x * h; coef[t] = -sqrt(scale) * (conv[b + t + 1] - conv[b + t]) with
            # b = floor((len(h) - 2) / 2): the difference and the shift by b are phase factors.
            b = (len(h) - 2) // 2
            H = np.fft.fft(h, fft_length) if is_complex else np.fft.rfft(h, fft_length)
            phase = 2j * np.pi * np.arange(H.size) / fft_length
            spectra.append(-np.sqrt(scales[row]) * H * (np.exp(phase) - 1.0) * np.exp(phase * b))
        is_range = rows == list(range(rows[0], rows[-1] + 1))
        result.append((fft_length, slice(rows[0], rows[-1] + 1) if is_range else rows, np.stack(spectra)))
    return result


@functools.lru_cache(maxsize=8)
def _cwt_filters_on(wavelet: str, scales: tuple, n_samples: int, device: str, dtype: torch.dtype):
    complex_dtype = torch.complex128 if dtype == torch.float64 else torch.complex64
    return [
        (fft_length, rows, torch.as_tensor(spectra, dtype=complex_dtype, device=device))
        for fft_length, rows, spectra in _cwt_filters(wavelet, scales, n_samples)
    ]


def scalogram(x: torch.Tensor, sample_rate: float, *, wavelet: str, scales, hop: int, log: bool,
              out: torch.Tensor | None = None, **_) -> torch.Tensor:
    """Batched :func:`deepself.signal.features.scalogram`: x (n, channels, time) -> (n, channels, scales, columns).

    Takes the resolved ``scales``; ``n_scales``, ``fmin``, ``fmax`` and ``method`` are accepted
    and not used (the scales say which frequencies; FFT and direct convolution give one map).
    ``out``: a contiguous tensor of that shape and dtype to write the map into (and return).
    """
    n, channels, n_samples = x.shape
    flat = x.reshape(n * channels, 1, n_samples)
    shape = (n * channels, len(scales), -(-n_samples // hop))
    out = torch.empty(shape, dtype=x.dtype, device=x.device) if out is None else out.view(shape)
    if x.device.type == "cpu":
        _scalogram_cpu(flat.numpy(), wavelet, tuple(float(s) for s in scales), hop, log, out.numpy())
        return out.reshape(n, channels, *out.shape[1:])
    groups = _cwt_filters_on(wavelet, tuple(float(s) for s in scales), n_samples, str(x.device), x.dtype)
    for fft_length, rows, spectra in groups:
        if spectra.shape[-1] == fft_length:  # a complex wavelet: full spectra
            coefficients = torch.fft.ifft(torch.fft.fft(flat, fft_length) * spectra)
        else:
            coefficients = torch.fft.irfft(torch.fft.rfft(flat, fft_length) * spectra, fft_length)
        magnitude = coefficients[..., :n_samples:hop]
        if isinstance(rows, slice):
            torch.abs(magnitude, out=out[:, rows])
        else:
            out[:, torch.as_tensor(rows, device=x.device)] = magnitude.abs()
    if log:
        out.log1p_()
    return out.reshape(n, channels, *out.shape[1:])


@functools.lru_cache(maxsize=8)
def _cwt_filters_np(wavelet: str, scales: tuple, n_samples: int, dtype: np.dtype):
    """:func:`_cwt_filters` with the spectra in the complex type of ``dtype`` (complex64 for float32)."""
    complex_dtype = np.complex128 if dtype == np.float64 else np.complex64
    return [(fft_length, rows, spectra.astype(complex_dtype))
            for fft_length, rows, spectra in _cwt_filters(wavelet, scales, n_samples)]


def _scalogram_cpu(flat: np.ndarray, wavelet: str, scales: tuple, hop: int, log: bool, out: np.ndarray) -> None:
    """The scalogram of ``flat`` (signals, 1, time) into ``out`` (signals, scales, columns), on the CPU.

    The same FFTs as on the GPU, by scipy's pocketfft: its inverse real FFT may overwrite its
    input (the product spectrum, a temporary), where PyTorch's (MKL) first copies it; on the
    2-core VM this took a quarter less time for ESC-10's 64 Morlet scales.
    """
    import scipy.fft

    n_samples = flat.shape[-1]
    for fft_length, rows, spectra in _cwt_filters_np(wavelet, scales, n_samples, flat.dtype):
        if spectra.shape[-1] == fft_length:  # a complex wavelet: full spectra
            product = scipy.fft.fft(flat, fft_length) * spectra
            coefficients = scipy.fft.ifft(product, fft_length, overwrite_x=True)
        else:
            product = scipy.fft.rfft(flat, fft_length) * spectra
            coefficients = scipy.fft.irfft(product, fft_length, overwrite_x=True)
        magnitude = coefficients[..., :n_samples:hop]
        if isinstance(rows, slice):
            np.abs(magnitude, out=out[:, rows])
        else:
            out[:, rows] = np.abs(magnitude)
    if log:
        np.log1p(out, out=out)
