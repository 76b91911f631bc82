"""Batched scalograms in PyTorch (or scipy's FFTs on the CPU): :func:`pywt.cwt`'s numbers, a block at a time.

The scalogram function that :func:`deepself.signal.fast.compute` runs; the method (pywt's filters,
folded into one spectrum per scale, scales grouped by FFT length) is described in
:mod:`deepself.signal.fast`.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

# pywt.cwt's default wavelet resolution (2 ** precision points).
_CWT_PRECISION = 12
# Scales whose FFT lengths differ by less than this factor share one FFT length.
_FFT_LENGTH_STEP = 1.2


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
    """Batched :func:`deepself.signal.wavelets.scalogram`: x (n, channels, time) -> (n, channels, scales, columns).

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
