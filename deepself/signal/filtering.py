"""Zero-phase band-pass filtering of signals along their time axis (the last axis)."""

from __future__ import annotations

import numbers

import numpy as np

from deepself.errors import DeepselfError


def check_band(sample_rate: float, band, order, key: str = "filter") -> None:
    """Raise unless ``band`` and ``order`` describe a band-pass that can be built at ``sample_rate``.

    Parameters
    ----------
    sample_rate : float
        Sampling rate of the signal in Hz.
    band : sequence of two floats
        ``[low, high]`` pass-band edges in Hz; needs ``0 < low < high < sample_rate / 2``.
    order : int
        Butterworth order, at least 1.
    key : str
        Config key of the filter, named in the error message (``f"{key}.band"``, ``f"{key}.order"``).

    Raises
    ------
    DeepselfError
        If the band or the order is invalid.
    """
    nyquist = sample_rate / 2
    try:
        low, high = (float(edge) for edge in band)
    except (TypeError, ValueError):
        raise DeepselfError(f"{key}.band: {band!r} is not a pair [low, high] of frequencies in Hz") from None
    if not (0 < low < high < nyquist):
        raise DeepselfError(
            f"{key}.band: [{low:g}, {high:g}] Hz is not a band with 0 < low < high < "
            f"the Nyquist frequency {nyquist:g} Hz"
        )
    if isinstance(order, bool) or not isinstance(order, numbers.Integral) or order < 1:
        raise DeepselfError(f"{key}.order: {order!r} is not an integer >= 1")


def bandpass(x, sample_rate: float, band, order: int = 4, key: str = "filter") -> np.ndarray:
    """Zero-phase Butterworth band-pass along the last axis.

    The filter runs forwards and backwards (:func:`scipy.signal.sosfiltfilt` with its default
    odd padding), so it shifts no phase and its magnitude response is the square of the
    Butterworth response: the attenuation in dB is doubled.

    Parameters
    ----------
    x : array_like, shape (..., time)
        Signal; any leading shape (channels, or epochs x channels).
    sample_rate : float
        Sampling rate in Hz.
    band : sequence of two floats
        ``[low, high]`` pass-band edges in Hz (-3 dB points of one pass, -6 dB after both).
    order : int, default 4
        Butterworth order of the band-pass prototype; the band-pass has ``order`` second-order
        sections.
    key : str, default "filter"
        Config key named in error messages.

    Returns
    -------
    np.ndarray, float32, same shape as ``x``
        ``sosfiltfilt(butter(order, band, "bandpass", fs=sample_rate, output="sos"), x, axis=-1)``.

    Raises
    ------
    DeepselfError
        If the band or order is invalid (see :func:`check_band`), or the signal is shorter than
        the padding sosfiltfilt needs.
    """
    check_band(sample_rate, band, order, key)
    x = np.asarray(x)
    if x.ndim == 0:
        raise DeepselfError(f"{key}: cannot filter a scalar; the signal needs a time axis")
    # imported here, not at the top: the feature stage imports this module but never filters, and
    # scipy.signal takes seconds to import
    import scipy.signal

    sos = scipy.signal.butter(order, band, "bandpass", fs=sample_rate, output="sos")
    # The padding sosfiltfilt applies by default (its own formula): the signal must be longer.
    ntaps = 2 * len(sos) + 1 - min((sos[:, 2] == 0).sum(), (sos[:, 5] == 0).sum())
    padlen = 3 * int(ntaps)
    if x.shape[-1] <= padlen:
        raise DeepselfError(
            f"{key}: a signal of {x.shape[-1]} samples is too short for a band-pass of order {order}; "
            f"it needs at least {padlen + 1} samples (sosfiltfilt pads {padlen} at each end)"
        )
    return scipy.signal.sosfiltfilt(sos, x, axis=-1).astype(np.float32)
