"""librosa's Mel filters by numpy alone: the feature job's Mel matrix and the config checks' empty bands.

:func:`mel_filters` gives the numbers of :func:`librosa.filters.mel` without librosa's imports;
:mod:`deepself.signal.fast_stft` builds its Mel products from it and :mod:`deepself.signal.params`
finds the bands no FFT bin falls in (:func:`empty_mel_filters`, :func:`most_mel_filters`).
"""

from __future__ import annotations

import numpy as np


def _hz_to_mel(hz: np.ndarray, htk: bool) -> np.ndarray:
    """librosa.hz_to_mel: HTK's ``2595 log10(1 + f / 700)``, or Slaney's (linear below 1 kHz, log above)."""
    hz = np.asarray(hz, dtype=np.float64)
    if htk:
        return 2595.0 * np.log10(1.0 + hz / 700.0)
    mels = hz / (200.0 / 3)
    log_part = hz >= 1000.0
    mels[log_part] = 15.0 + np.log(hz[log_part] / 1000.0) / (np.log(6.4) / 27.0)
    return mels


def _mel_to_hz(mels: np.ndarray, htk: bool) -> np.ndarray:
    """librosa.mel_to_hz, the inverse of :func:`_hz_to_mel`."""
    mels = np.asarray(mels, dtype=np.float64)
    if htk:
        return 700.0 * (10.0 ** (mels / 2595.0) - 1.0)
    hz = mels * (200.0 / 3)
    log_part = mels >= 15.0
    hz[log_part] = 1000.0 * np.exp(np.log(6.4) / 27.0 * (mels[log_part] - 15.0))
    return hz


def _mel_edges(sample_rate: float, n_fft: int, n_mels: int, fmin: float, fmax: float,
               htk: bool) -> tuple[np.ndarray, np.ndarray]:
    """The FFT bins' frequencies and the ``n_mels + 2`` Mel-spaced edges of the filters (librosa's)."""
    bins = np.fft.rfftfreq(n_fft, d=1.0 / sample_rate)
    edges = _mel_to_hz(np.linspace(_hz_to_mel(np.array([fmin]), htk)[0], _hz_to_mel(np.array([fmax]), htk)[0],
                                   n_mels + 2), htk)
    return bins, edges


def mel_filters(sample_rate: float, n_fft: int, n_mels: int, fmin: float, fmax: float, htk: bool = False,
                norm="slaney") -> np.ndarray:
    """:func:`librosa.filters.mel` (float32, ``(n_mels, 1 + n_fft // 2)``), the same numbers, by numpy alone.

    Triangles between Mel-spaced edges over the FFT bins ``k * sample_rate / n_fft``, computed in
    float64 and stored in float32 as librosa does; ``norm``: "slaney" (each filter times 2 / its
    width in Hz), a number p > 0 (each filter to unit p-norm, :func:`librosa.util.normalize`), or
    None. The feature job builds its Mel matrix with it, without librosa's imports (about 2 s:
    scipy.signal), and the config checks find the empty filters with it.
    """
    bins, edges = _mel_edges(sample_rate, n_fft, n_mels, fmin, fmax, htk)
    widths = np.diff(edges)
    ramps = np.subtract.outer(edges, bins)
    lower = -ramps[:-2] / widths[:-1, None]
    upper = ramps[2:] / widths[1:, None]
    weights = np.maximum(0, np.minimum(lower, upper)).astype(np.float32)
    if isinstance(norm, str):
        if norm != "slaney":
            raise ValueError(f"norm {norm!r} is not 'slaney', a positive number or None")
        weights *= (2.0 / (edges[2:] - edges[:-2]))[:, None]
    elif norm is not None:
        length = np.sum(np.abs(weights).astype(float) ** norm, axis=-1, keepdims=True) ** (1.0 / norm)
        length[length < np.finfo(np.float32).tiny] = 1.0  # librosa: filters of no weight are left as they are
        normalized = np.empty_like(weights)
        normalized[:] = weights / length
        weights = normalized
    return weights


def empty_mel_filters(sample_rate: float, n_fft: int, n_mels: int, fmin: float, fmax: float, htk: bool = False,
                      norm="slaney") -> np.ndarray:
    """The Mel filters that :func:`librosa.filters.mel` leaves empty (its "Empty filters" warning), by numpy alone.

    The filters are :func:`mel_filters`, librosa's own numbers, so that a config can be checked
    while the workflow is parsed, without importing librosa.

    Returns
    -------
    np.ndarray of int
        Indices of the empty filters; a filter whose lower edge is 0 Hz does not count (librosa's rule).
    """
    weights = mel_filters(sample_rate, n_fft, n_mels, fmin, fmax, htk, "slaney" if norm == "slaney" else None)
    edges = _mel_edges(sample_rate, n_fft, n_mels, fmin, fmax, htk)[1]
    return np.flatnonzero(~((edges[:-2] == 0) | (weights.max(axis=1) > 0)))


def most_mel_filters(sample_rate: float, n_fft: int, fmin: float, fmax: float, htk: bool = False, norm="slaney",
                     below: int = 1024) -> int:
    """The largest number of Mel bands under ``below`` that :func:`empty_mel_filters` leaves none of empty; 0 if none.

    Bisection (more bands are narrower, so emptier), then a step down for the rare count where
    the bins' grid breaks that order.
    """
    def full(n: int) -> bool:
        return not len(empty_mel_filters(sample_rate, n_fft, n, fmin, fmax, htk, norm))

    low, high = 0, below  # full(low) holds (0 bands: trivially), full(high) does not
    while high - low > 1:
        middle = (low + high) // 2
        low, high = (middle, high) if full(middle) else (low, middle)
    while low and not full(low):
        low -= 1
    return low
