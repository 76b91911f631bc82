"""The scalogram's reference feature map (:func:`pywt.cwt`) and its default scales.

Part of the reference maps of :mod:`deepself.signal.features` (``FEATURES["scalogram"]``);
:mod:`deepself.signal.params` uses the default scales to complete a scalogram's parameters.
Imports numpy only: pywt is imported where a scalogram needs it.
"""

from __future__ import annotations

import numpy as np


def _default_fmin(sample_rate: float, n_samples: int) -> float:
    """Lowest scalogram frequency by default: four periods fit in the signal."""
    return 4.0 * sample_rate / n_samples


def _scales_for(wavelet: str, sample_rate: float, n_scales: int, fmin: float, fmax: float) -> np.ndarray:
    """Scales of ``n_scales`` frequencies log-spaced from ``fmax`` down to ``fmin`` (Hz)."""
    import pywt  # only scalograms need it: other jobs start without it

    frequencies = np.geomspace(fmax, fmin, n_scales)
    return np.atleast_1d(pywt.frequency2scale(wavelet, frequencies / sample_rate))


def scalogram(
    x: np.ndarray,
    sample_rate: float,
    *,
    wavelet: str = "morl",
    scales=None,
    n_scales: int = 64,
    fmin: float | None = None,
    fmax: float | None = None,
    hop: int = 1,
    log: bool = False,
    method: str = "fft",
) -> np.ndarray:
    """Magnitude of the continuous wavelet transform, :func:`pywt.cwt`.

    Parameters
    ----------
    x : np.ndarray, shape (channels, time)
        One sample.
    sample_rate : float
        Sampling rate in Hz.
    wavelet : str, default "morl"
        A continuous wavelet of ``pywt.wavelist(kind="continuous")``; the parametrised families
        take their parameters in the name (``"cmor1.5-1.0"``).
    scales : sequence of float, optional
        Scales in samples, as :func:`pywt.cwt` takes them. When given, ``n_scales``, ``fmin`` and
        ``fmax`` are not used. By default ``n_scales`` scales whose centre frequencies
        (:func:`pywt.scale2frequency`) are log-spaced from ``fmax`` down to ``fmin``.
    n_scales : int, default 64
        Number of scales when ``scales`` is not given.
    fmin : float, optional
        Lowest centre frequency in Hz; default ``4 * sample_rate / time``, the frequency whose
        period fits four times in the signal. A lower one would give a wavelet (about five
        periods long for the Morlet) much longer than the signal: rows of edge effects only.
    fmax : float, optional
        Highest centre frequency in Hz; default ``sample_rate / 4``, four samples per period.
        Closer to Nyquist the sampled wavelet has too few samples per period to be a wavelet.
    hop : int, default 1
        Keep every ``hop``-th time step: the transform has one column per sample, which for
        long audio gives maps far larger than a model needs.
    log : bool, default False
        Apply ``log1p`` to the magnitude (compresses its range, keeps zero at zero).
    method : {"fft", "conv"}, default "fft"
        How :func:`pywt.cwt` convolves. Both give the same result (to float precision), but
        "conv" costs time x wavelet length, and the wavelet at the lowest frequency is about as
        long as the signal: quadratic in the signal length.

    Returns
    -------
    np.ndarray, float32, shape (channels, n_scales, ceil(time / hop))
        Row 0 is the smallest scale, the highest frequency (scales ascend, frequencies descend,
        as in pywt).
    """
    if scales is None:
        scales = _scales_for(
            wavelet,
            sample_rate,
            n_scales,
            _default_fmin(sample_rate, x.shape[-1]) if fmin is None else fmin,
            sample_rate / 4 if fmax is None else fmax,
        )
    import pywt  # only scalograms need it: other jobs start without it

    coefficients, _ = pywt.cwt(
        x, scales, wavelet, sampling_period=1 / sample_rate, method=method, axis=-1
    )
    # pywt puts the scales first: (scales, channels, time) -> (channels, scales, time).
    S = np.abs(np.moveaxis(coefficients, 0, -2)[..., ::hop])
    if log:
        S = np.log1p(S)
    return S.astype(np.float32, copy=False)
