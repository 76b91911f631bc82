"""Batched feature maps in PyTorch: the numbers of the librosa / pywt references, a block at a time.

:mod:`deepself.signal.features` defines every feature by a reference function of one sample
(librosa, pywt). This module computes the same maps for a whole block ``(n, channels, time)`` at
once, on the GPU when PyTorch sees one, else on the CPU (the maps themselves: spectrogram and log-Mel in
:mod:`deepself.signal.fast_stft`, the scalogram in :mod:`deepself.signal.fast_cwt`):

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
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch

from deepself.signal.fast_cwt import _cwt_filters, scalogram
from deepself.signal.fast_stft import logmel, spectrogram

KINDS = ("spectrogram", "logmel", "scalogram")
PRECISIONS = {"float32": torch.float32, "float64": torch.float64}
# Bytes of intermediate arrays that one step (one sub-block) may hold; a larger block is cut into
# sub-blocks, so that memory does not grow with the block. On the CPU small steps are also
# faster: arrays of a few MB are recycled by the C allocator, larger ones are mapped afresh (page
# faults) each time; on the CPU each of torch.get_num_threads() threads works on its own step.
MEMORY_BUDGET = {"cpu": 16 * 2**20, "cuda": 1024 * 2**20}


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
        Complete parameters, as :func:`deepself.signal.params.check_params` returns them.
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
