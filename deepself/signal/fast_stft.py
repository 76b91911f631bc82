"""Batched spectrogram and log-Mel maps in PyTorch: librosa's STFT, Mel matrix and dB, a block at a time.

The spectrogram and log-Mel functions that :func:`deepself.signal.fast.compute` runs (see
:mod:`deepself.signal.fast` for the method, the precision and the sub-blocks): frames of the
centre-padded signal times librosa's window, a real FFT, the Mel matrix of
:func:`deepself.signal.mel.mel_filters` in bands of neighbouring filters, and librosa's dB conversion.
"""

from __future__ import annotations

import functools
import math

import numpy as np
import torch

from deepself.signal.mel import mel_filters

# Mel filters multiplied together with the FFT bins they span (see _mel_bands).
_MELS_PER_BAND = 16


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
