"""Feature maps of signals: pure functions, array in, array out, looked up by name in ``FEATURES``.

Every feature takes one sample ``x`` of shape (channels, time) and its sampling rate, then its own
parameters keyword-only, and returns a float32 map of shape (channels, rows, frames):

- ``raw``: the signal itself, (channels, time);
- ``spectrogram``: ``1 + n_fft // 2`` STFT bins, lowest frequency first, by STFT frames;
- ``logmel``: ``n_mels`` Mel bands, lowest first, by STFT frames;
- ``scalogram``: one row per wavelet scale, smallest scale (highest frequency) first, by
  ``ceil(time / hop)`` columns.

A config names a feature and its parameters; :func:`check_params` checks them against the
signal before any work and returns them complete, so that a stored feature map says exactly how
it was made. :func:`compute` runs a feature on one sample or a batch: by default the batched
PyTorch implementation of :mod:`deepself.signal.fast` (CPU or CUDA), which gives the same maps as
the functions here; these stay the reference (``backend="reference"``) the tests compare with.
"""

from __future__ import annotations

import inspect
import math
import numbers

import numpy as np

from deepself.errors import DeepselfError


def raw(x: np.ndarray, sample_rate: float) -> np.ndarray:
    """Return the signal itself, for models that learn their own front end.

    Parameters
    ----------
    x : np.ndarray, shape (channels, time)
        One sample.
    sample_rate : float
        Sampling rate in Hz (unused; every feature takes it).

    Returns
    -------
    np.ndarray, shape (channels, time)
        ``x`` unchanged.
    """
    return x


def _db_reference(ref):
    """librosa's ``ref``: a number, or ``np.max`` for the config string "max"."""
    return np.max if isinstance(ref, str) and ref == "max" else ref


def spectrogram(
    x: np.ndarray,
    sample_rate: float,
    *,
    n_fft: int = 512,
    hop_length: int | None = None,
    win_length: int | None = None,
    window="hann",
    center: bool = True,
    pad_mode: str = "constant",
    power: float = 2.0,
    log: bool = True,
    ref: float | str = 1.0,
    amin: float = 1e-10,
    top_db: float | None = 80.0,
) -> np.ndarray:
    """Short-time Fourier magnitude (``power`` 1) or power (``power`` 2), in dB when ``log``.

    Parameters
    ----------
    x : np.ndarray, shape (channels, time)
        One sample.
    sample_rate : float
        Sampling rate in Hz (the bins are ``k * sample_rate / n_fft``).
    n_fft : int, default 512
        FFT length in samples; gives ``1 + n_fft // 2`` frequency bins.
    hop_length : int, optional
        Samples between frames; default ``win_length // 4`` (librosa's default; ``n_fft // 4``
        when ``win_length`` is not given).
    win_length : int, optional
        Window length in samples, at most ``n_fft``; default ``n_fft``.
    window : str or tuple, default "hann"
        Window, as :func:`scipy.signal.get_window` names it.
    center : bool, default True
        Pad the signal so that frame ``t`` is centred at sample ``t * hop_length``.
    pad_mode : str, default "constant"
        How to pad when ``center`` (zeros by default).
    power : float, default 2.0
        Exponent of the magnitude; with ``log`` only 1 (amplitude) or 2 (power).
    log : bool, default True
        Convert to dB with :func:`librosa.power_to_db` (power 2) or
        :func:`librosa.amplitude_to_db` (power 1).
    ref : float or "max", default 1.0
        dB reference: 0 dB is ``ref`` (``"max"``: the largest value of the sample).
    amin : float, default 1e-10
        Floor before the logarithm.
    top_db : float or None, default 80.0
        Clip at ``top_db`` below the peak. The peak is taken over all channels of the sample,
        so that a quiet channel stays quiet relative to the others.

    Returns
    -------
    np.ndarray, float32, shape (channels, 1 + n_fft // 2, frames)
    """
    import librosa  # in the features job only: the checks of the workflow's parsing start without it

    stft = librosa.stft(
        x,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
    )
    S = np.abs(stft) ** power
    if log:
        if power == 2:
            S = librosa.power_to_db(S, ref=_db_reference(ref), amin=amin, top_db=top_db)
        elif power == 1:
            S = librosa.amplitude_to_db(S, ref=_db_reference(ref), amin=amin, top_db=top_db)
        else:
            raise DeepselfError(f"spectrogram: log=True needs power 1 or 2, got power={power}")
    return S.astype(np.float32, copy=False)


def logmel(
    x: np.ndarray,
    sample_rate: float,
    *,
    n_fft: int = 2048,
    hop_length: int = 512,
    win_length: int | None = None,
    window="hann",
    center: bool = True,
    pad_mode: str = "constant",
    window_at: str = "centre",
    power: float = 2.0,
    n_mels: int = 128,
    fmin: float = 0.0,
    fmax: float | None = None,
    htk: bool = False,
    norm="slaney",
    peak_normalize: bool = False,
    log: str = "db",
    log_gain: float = 10000.0,
    log_offset: float = 0.001,
    ref: float | str = 1.0,
    amin: float = 1e-10,
    top_db: float | None = 80.0,
    scale: float = 1.0,
) -> np.ndarray:
    """Log-Mel spectrogram: :func:`librosa.feature.melspectrogram`, in dB or log10(1 + gain * S).

    With ``peak_normalize=True, log="log10_1p", log_gain=10000, scale=1 / 9.457798957824707``,
    ``norm=1.0``, ``htk=True`` (and aisfx's STFT and Mel parameters) this is the input of the
    pretrained aisfx ConvBlocks (``aisfx.spectrogram.spectrogram_librosa`` followed by
    ``aisfx.preprocessing.spectrogram_normalize``). At 16 kHz, with ``n_fft=512, win_length=400,
    hop_length=160, center=False, window_at="start", power=1, n_mels=64, fmin=125, fmax=7500,
    htk=True, norm=None, log="offset", log_offset=0.001`` it is YAMNet's front end (its
    ``features.py``; TensorFlow's Mel filters are triangles in Mel rather than in Hz, which moves
    no weight of these 64 filters by more than 0.0045 of a filter's peak of 1).

    Parameters
    ----------
    x : np.ndarray, shape (channels, time)
        One sample.
    sample_rate : float
        Sampling rate in Hz.
    n_fft, hop_length, win_length, window, center, pad_mode, power
        STFT parameters as in :func:`spectrogram` (librosa's defaults: 2048, 512).
    window_at : {"centre", "start"}, default "centre"
        Where the window of ``win_length`` samples sits in each FFT frame of ``n_fft``: "centre"
        as librosa (frames of ``n_fft`` samples); "start" as ``tf.signal.stft`` (frames of
        ``win_length`` samples, each zero-padded at its end to ``n_fft``; needs ``center=False``).
        The magnitudes are the same; the frames start ``(n_fft - win_length) // 2`` samples
        earlier and there are ``1 + (time - win_length) // hop_length`` of them.
    n_mels : int, default 128
        Number of Mel bands.
    fmin : float, default 0.0
        Lowest band edge in Hz.
    fmax : float, optional
        Highest band edge in Hz; default the Nyquist frequency ``sample_rate / 2``.
    htk : bool, default False
        HTK Mel scale instead of Slaney's.
    norm : "slaney", float or None, default "slaney"
        Normalisation of the Mel filters, as :func:`librosa.filters.mel` takes it: "slaney"
        divides each filter by its width in Hz (equal area); a number ``p > 0`` scales each
        filter to unit ``p``-norm (1: its weights sum to 1); None leaves each triangle's peak at 1.
    peak_normalize : bool, default False
        Divide the sample, all channels together, by its largest absolute value before the STFT
        (a silent sample stays zero), so that the map does not depend on the recording level.
    log : {"db", "log10_1p", "offset"}, default "db"
        "db": :func:`librosa.power_to_db` with ``ref``, ``amin`` and ``top_db``;
        "log10_1p": ``log10(1 + log_gain * S)``, zero for silence, with no reference, floor or clip;
        "offset": the natural ``log(S + log_offset)`` (YAMNet's, with ``log_offset=0.001``).
    log_gain : float, default 10000.0
        Gain inside "log10_1p" (used by no other log).
    log_offset : float, default 0.001
        Offset inside "offset" (used by no other log).
    ref, amin, top_db
        dB conversion as in :func:`spectrogram`; ``top_db`` is relative to the peak over all
        channels of the sample (unused by "log10_1p").
    scale : float, default 1.0
        Multiply the map by this at the end, after either logarithm.

    Returns
    -------
    np.ndarray, float32, shape (channels, n_mels, frames)
    """
    import librosa  # in the features job only: the checks of the workflow's parsing start without it

    if peak_normalize:
        peak = np.max(np.abs(x))
        if peak > 0:
            x = x / peak
    if window_at == "start":
        # librosa centres the window in n_fft: zeros before and after the signal make its frames
        # start where tf.signal.stft's do.
        before = (n_fft - (win_length or n_fft)) // 2
        x = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(before, n_fft - (win_length or n_fft) - before)])
    S = librosa.feature.melspectrogram(
        y=x,
        sr=sample_rate,
        n_fft=n_fft,
        hop_length=hop_length,
        win_length=win_length,
        window=window,
        center=center,
        pad_mode=pad_mode,
        power=power,
        n_mels=n_mels,
        fmin=fmin,
        fmax=fmax,
        htk=htk,
        norm=norm,
    )
    if log == "db":
        S = librosa.power_to_db(S, ref=_db_reference(ref), amin=amin, top_db=top_db)
    elif log == "offset":
        S = np.log(S + log_offset)
    else:
        S = np.log10(S * log_gain + 1.0)
    return (S * scale).astype(np.float32, copy=False)


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


FEATURES = {"raw": raw, "spectrogram": spectrogram, "logmel": logmel, "scalogram": scalogram}

# librosa's pad modes for centred frames, less "empty": it pads with uninitialised memory, so the
# same signal would not give the same features twice.
_PAD_MODES = ("constant", "edge", "linear_ramp", "reflect", "symmetric")
_CWT_METHODS = ("fft", "conv")
# The parameters that only one logarithm of logmel reads.
_LOGMEL_LOG_PARAMS = {"db": ("ref", "amin", "top_db"), "log10_1p": ("log_gain",), "offset": ("log_offset",)}


def _defaults(kind: str) -> dict:
    """The feature's own parameters (after ``x, sample_rate``) with their defaults."""
    parameters = list(inspect.signature(FEATURES[kind]).parameters.values())[2:]
    return {p.name: p.default for p in parameters}


def _is_number(value) -> bool:
    return isinstance(value, numbers.Real) and not isinstance(value, bool) and math.isfinite(value)


def _plain(value):
    """numpy scalars and arrays as the Python numbers and lists that a config (and the schema) has."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    return value.item() if isinstance(value, np.generic) else value


def _check_schema(kind: str, p: dict, key: str) -> None:
    """Check the parameters the config schema describes against it, and give them its types.

    The schema (``features.<name>`` of ``config.schema.yaml``) is the one description of types,
    ranges and names (windows, wavelets); integers become ``int``, numbers ``float``, so that the
    parameters are stored the same however they were given. A parametrised window (a tuple such
    as ``("kaiser", 8.0)``, which only the Python API takes) is checked by scipy in :func:`_check_stft`.
    """
    from deepself.config import check_feature_schema, feature_schema

    described = feature_schema(kind)
    check_feature_schema(kind, {k: v for k, v in p.items() if k in described and not _is_window_tuple(k, v)}, key)
    for name, schema in described.items():
        value = p.get(name)
        types = schema.get("type", ())
        types = [types] if isinstance(types, str) else types
        if isinstance(value, bool) or not isinstance(value, (numbers.Real, list)):
            continue
        if isinstance(value, list):
            if schema.get("items", {}).get("type") == "number":
                p[name] = [float(v) for v in value]
            continue
        if not math.isfinite(value):
            raise DeepselfError(f"{key}.{name}: {value!r} is not a finite number")
        p[name] = int(value) if "integer" in types else float(value) if "number" in types else value


def _is_window_tuple(name: str, value) -> bool:
    return name == "window" and isinstance(value, (list, tuple))


def _check_choice(p: dict, name: str, key: str, choices) -> None:
    if p[name] not in choices:
        raise DeepselfError(f"{key}.{name}: {p[name]!r} is not one of {', '.join(map(str, choices))}")


def _check_frequency_range(p: dict, key: str, sample_rate: float) -> None:
    """fmin and fmax (both resolved) must satisfy fmin < fmax <= Nyquist."""
    nyquist = sample_rate / 2
    if p["fmax"] > nyquist:
        raise DeepselfError(f"{key}.fmax: {p['fmax']:g} Hz is above the Nyquist frequency {nyquist:g} Hz")
    if p["fmin"] >= p["fmax"]:
        raise DeepselfError(f"{key}.fmin: {p['fmin']:g} Hz is not below fmax {p['fmax']:g} Hz")


def _check_stft(p: dict, key: str, n_samples: int) -> None:
    if p["n_fft"] > n_samples:
        raise DeepselfError(f"{key}.n_fft: {p['n_fft']} is longer than the signal ({n_samples} samples)")
    if p["win_length"] is None:
        p["win_length"] = p["n_fft"]
    if p["win_length"] > p["n_fft"]:
        raise DeepselfError(f"{key}.win_length: {p['win_length']} is longer than n_fft {p['n_fft']}")
    if p["hop_length"] is None:
        p["hop_length"] = p["win_length"] // 4
        if p["hop_length"] < 1:
            raise DeepselfError(f"{key}.hop_length: the default win_length // 4 is 0; give hop_length")
    if _is_window_tuple("window", p["window"]):
        _check_window_tuple(p, key)
    _check_choice(p, "pad_mode", key, _PAD_MODES)


def _check_window_tuple(p: dict, key: str) -> None:
    """A parametrised window, ``(name, parameters...)`` (a list once stored as JSON), as scipy takes it."""
    window = p["window"] = tuple(p["window"])
    if not (window and isinstance(window[0], str)):
        raise DeepselfError(f"{key}.window: {window!r} is not a window name such as 'hann'")
    import librosa  # only a window the config cannot give needs it

    try:
        librosa.filters.get_window(window, p["win_length"])
    except (ValueError, TypeError, librosa.ParameterError) as error:
        raise DeepselfError(f"{key}.window: {window!r} is not a window scipy knows ({error})") from None


def _check_db(p: dict, key: str) -> None:
    if p["ref"] != "max" and not (_is_number(p["ref"]) and p["ref"] > 0):
        raise DeepselfError(f"{key}.ref: {p['ref']!r} is not a positive number or 'max'")


def _check_spectrogram(p: dict, given: dict, key: str, sample_rate: float, n_samples: int) -> None:
    _check_stft(p, key, n_samples)
    if p["log"] and p["power"] not in (1.0, 2.0):
        raise DeepselfError(
            f"{key}.power: {p['power']:g} cannot be converted to dB; use 1 (amplitude) or 2 (power), "
            "or log: false"
        )
    _check_db(p, key)


def _check_logmel(p: dict, given: dict, key: str, sample_rate: float, n_samples: int) -> None:
    _check_stft(p, key, n_samples)
    if p["fmax"] is None:
        p["fmax"] = sample_rate / 2
    _check_frequency_range(p, key, sample_rate)
    norm = p["norm"]
    if not (norm is None or norm == "slaney" or (_is_number(norm) and norm > 0)):
        raise DeepselfError(
            f"{key}.norm: {norm!r} is not 'slaney', a positive number (each filter to unit p-norm) or null"
        )
    if p["window_at"] == "start" and p["center"]:
        raise DeepselfError(f"{key}.window_at: start frames as tf.signal.stft does, which does not centre; "
                            f"set center: false")
    _check_db(p, key)
    # A validated config carries every key (the schema fills defaults), so only a value other
    # than the default can tell that the user set a parameter the chosen logarithm ignores.
    defaults = _defaults("logmel")
    for other, names in _LOGMEL_LOG_PARAMS.items():
        for name in names:
            if other != p["log"] and p[name] != defaults[name]:
                raise DeepselfError(
                    f"{key}.{name}: set to {given[name]!r}, but {name} applies only with log: {other}, "
                    f"not with log: {p['log']}; leave it out"
                )
    _check_mel_filters(p, key, sample_rate)


def _check_mel_filters(p: dict, key: str, sample_rate: float) -> None:
    """Refuse Mel bands that no FFT bin falls in (librosa only warns "Empty filters"), naming the most that work."""
    mels = (sample_rate, p["n_fft"], p["fmin"], p["fmax"], p["htk"], p["norm"])
    empty = empty_mel_filters(*mels[:2], p["n_mels"], *mels[2:])
    if not len(empty):
        return
    most = most_mel_filters(*mels, below=p["n_mels"])
    fix = (f"set n_mels to at most {most}, or raise n_fft" if most else
           "raise n_fft or widen fmin..fmax: not even one band works")
    raise DeepselfError(
        f"{key}.n_mels: {p['n_mels']} Mel bands from {p['fmin']:g} to {p['fmax']:g} Hz leave {len(empty)} of them "
        f"empty (no FFT bin falls inside; n_fft {p['n_fft']} at {sample_rate:g} Hz puts bins "
        f"{sample_rate / p['n_fft']:g} Hz apart): {fix}"
    )


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


def _check_scalogram(p: dict, given: dict, key: str, sample_rate: float, n_samples: int) -> None:
    import pywt  # only scalograms need it: other jobs start without it

    _check_choice(p, "method", key, _CWT_METHODS)
    nyquist = sample_rate / 2
    if p["scales"] is not None:
        try:
            scales = np.asarray(p["scales"], dtype=float)
        except (TypeError, ValueError):
            raise DeepselfError(f"{key}.scales: {p['scales']!r} is not a list of numbers") from None
        if scales.ndim != 1 or scales.size == 0 or not np.all(np.isfinite(scales)) or np.any(scales <= 0):
            raise DeepselfError(f"{key}.scales: {p['scales']!r} is not a non-empty list of positive numbers")
        frequencies = pywt.scale2frequency(p["wavelet"], scales) * sample_rate
        if frequencies.max() > nyquist:
            raise DeepselfError(
                f"{key}.scales: scale {scales.min():g} has centre frequency {frequencies.max():g} Hz, "
                f"above the Nyquist frequency {nyquist:g} Hz"
            )
        resolved = {
            "n_scales": int(scales.size),
            "fmin": float(frequencies.min()),
            "fmax": float(frequencies.max()),
        }
        # The scales decide; n_scales, fmin and fmax may be given too (a stored, resolved
        # parameter set has them) but must then say the same thing.
        for name, value in resolved.items():
            mentioned = given.get(name)
            agrees = _is_number(mentioned) and np.isclose(mentioned, value, rtol=1e-6, atol=0)
            if mentioned is not None and not agrees:
                raise DeepselfError(
                    f"{key}.{name}: {given[name]!r} disagrees with {key}.scales, which give {value:g}; "
                    "give either scales or n_scales/fmin/fmax"
                )
        p.update(resolved, scales=scales.tolist())
        return
    if p["fmax"] is None:
        p["fmax"] = sample_rate / 4
    fmin_is_default = p["fmin"] is None
    if fmin_is_default:
        p["fmin"] = _default_fmin(sample_rate, n_samples)
    if fmin_is_default and p["fmax"] <= nyquist and p["fmin"] >= p["fmax"]:
        raise DeepselfError(
            f"{key}.fmin: the default {p['fmin']:g} Hz (4 periods in {n_samples} samples) is not "
            f"below fmax {p['fmax']:g} Hz; the signal is too short for it, give fmin"
        )
    _check_frequency_range(p, key, sample_rate)
    p["scales"] = _scales_for(p["wavelet"], sample_rate, p["n_scales"], p["fmin"], p["fmax"]).tolist()


_CHECKS = {
    "raw": lambda p, given, key, sample_rate, n_samples: None,
    "spectrogram": _check_spectrogram,
    "logmel": _check_logmel,
    "scalogram": _check_scalogram,
}


def check_params(kind: str, params: dict | None, sample_rate: float, n_samples: int, key: str) -> dict:
    """Check a feature's parameters against the signal, before any work, and complete them.

    Types, ranges and names (windows, wavelets) are checked against the config schema, the one
    description of them (:func:`deepself.config.check_feature_schema`); what depends on the
    signal (its rate and length) or on several parameters together is checked here. Neither
    imports librosa, scipy or torch (a parametrised window, which no config can give, excepted):
    the workflow runs this while it is parsed.

    Parameters
    ----------
    kind : str
        A name in ``FEATURES``.
    params : dict or None
        The parameters the config gives (a subset of the feature's keyword arguments).
    sample_rate : float
        Sampling rate of the signals in Hz.
    n_samples : int
        Length of the signals in samples.
    key : str
        Config key of the feature block, named in error messages (``f"{key}.n_fft"``).

    Returns
    -------
    dict
        Every parameter of the feature, defaults filled and derived values explicit
        (``hop_length``, ``win_length``, ``fmax``, ``fmin``, ``scales`` as a list of floats), so
        that the feature can be recomputed from it alone. Checking the result again returns it
        unchanged.

    Raises
    ------
    DeepselfError
        If ``kind`` is unknown, a parameter is unknown, or a value cannot work for this signal
        (e.g. ``n_fft`` longer than the signal, ``fmax`` above Nyquist, ``fmin >= fmax``, more
        Mel bands than the FFT bins can fill, an unknown wavelet, non-positive scales).
    """
    if kind not in FEATURES:
        raise DeepselfError(f"{key}: unknown feature {kind!r}; known features: {', '.join(FEATURES)}")
    given = {name: _plain(value) for name, value in (params or {}).items()}
    defaults = _defaults(kind)
    unknown = sorted(set(given) - set(defaults))
    if unknown:
        allowed = ", ".join(defaults) or "none"
        raise DeepselfError(f"{key}.{unknown[0]}: not a parameter of {kind}; its parameters are: {allowed}")
    p = {**defaults, **given}
    _check_schema(kind, p, key)
    _CHECKS[kind](p, given, key, sample_rate, n_samples)
    return p


def output_shape(
    kind: str, params: dict | None, sample_rate: float, n_samples: int, n_channels: int, key: str = "features"
) -> tuple:
    """Shape of one sample's feature map, without computing it.

    Parameters
    ----------
    kind : str
        A name in ``FEATURES``.
    params : dict or None
        Its parameters (checked and completed with :func:`check_params`).
    sample_rate : float
        Sampling rate in Hz.
    n_samples : int
        Signal length in samples.
    n_channels : int
        Number of channels.
    key : str, default "features"
        Config key named in error messages.

    Returns
    -------
    tuple of int
        ``(n_channels, n_samples)`` for raw, else ``(n_channels, rows, frames)``.
    """
    p = check_params(kind, params, sample_rate, n_samples, key)
    if kind == "raw":
        return (n_channels, n_samples)
    if kind == "scalogram":
        return (n_channels, len(p["scales"]), -(-n_samples // p["hop"]))
    # Centred frames pad n_fft // 2 on each side (one sample less than n_fft when it is odd).
    padded = n_samples + 2 * (p["n_fft"] // 2) if p["center"] else n_samples
    if p.get("window_at") == "start":
        padded += p["n_fft"] - p["win_length"]
    frames = 1 + (padded - p["n_fft"]) // p["hop_length"]
    rows = 1 + p["n_fft"] // 2 if kind == "spectrogram" else p["n_mels"]
    return (n_channels, rows, frames)


BACKENDS = ("torch", "reference")


def compute(kind: str, x, sample_rate: float, params: dict | None, key: str = "features", *,
            backend: str = "torch", device=None, out: np.ndarray | None = None) -> np.ndarray:
    """Compute a feature for one sample or a batch.

    Parameters
    ----------
    kind : str
        A name in ``FEATURES``.
    x : array_like, shape (channels, time) or (n, channels, time)
        One sample, or a batch of samples of equal length.
    sample_rate : float
        Sampling rate in Hz.
    params : dict or None
        The feature's parameters (checked with :func:`check_params` first).
    key : str, default "features"
        Config key named in error messages.
    backend : {"torch", "reference"}, default "torch"
        "torch": the whole batch at once by :mod:`deepself.signal.fast` (CUDA when there is a GPU);
        "reference": the functions of ``FEATURES`` (librosa, pywt), one sample at a time. Both
        give the same maps (to 1e-4 of their peak).
    device : str or torch.device, optional
        Device of the torch backend; default CUDA when available, else the CPU.
    out : np.ndarray, optional
        A C-contiguous float32 array of the result's shape to write a batch's maps into and return
        (the torch backend; the others copy into it). A job that computes block after block
        passes the same memory each time: fresh memory costs a page fault every 4 KB, on the
        2-core VM as long as computing a scalogram (benchmarks/README.md).

    Returns
    -------
    np.ndarray, float32
        The feature map, shape ``output_shape(...)``, or ``(n, *output_shape(...))`` for a
        batch. Each sample of a batch is computed on its own, so that ``ref="max"`` and
        ``top_db`` refer to that sample's peak (over all its channels).

    Raises
    ------
    DeepselfError
        If the parameters are bad (see :func:`check_params`), ``x`` has another number of
        dimensions, or holds NaN or infinite values.
    """
    if backend not in BACKENDS:
        raise DeepselfError(f"{key}: backend {backend!r} is not one of {', '.join(BACKENDS)}")
    x = np.asarray(x, dtype=np.float32)
    if x.ndim not in (2, 3):
        raise DeepselfError(
            f"{key}: expected one sample (channels, time) or a batch (n, channels, time), got shape {x.shape}"
        )
    p = check_params(kind, params, sample_rate, x.shape[-1], key)
    # min and max are NaN or infinite when any value is; unlike isfinite they need no temporary array.
    if x.size and not (np.isfinite(x.min()) and np.isfinite(x.max())):
        where = ""
        if x.ndim == 3:
            where = f" (batch items {np.flatnonzero(~np.isfinite(x).all(axis=(1, 2))).tolist()})"
        raise DeepselfError(f"{key}: the signal holds NaN or infinite values{where}")
    if kind == "raw":
        return x
    if backend == "torch" and x.size:
        from deepself.signal import fast

        batch = fast.compute(kind, x if x.ndim == 3 else x[None], sample_rate, p, device=device,
                             out=out if out is None or x.ndim == 3 else out[None])
        return batch if x.ndim == 3 else batch[0]
    feature = FEATURES[kind]
    if x.ndim == 2:
        y = np.asarray(feature(x, sample_rate, **p), dtype=np.float32)
        if out is not None:
            out[...] = y
        return y if out is None else out
    shape = output_shape(kind, p, sample_rate, x.shape[-1], x.shape[1], key)
    out = np.empty((len(x), *shape), dtype=np.float32) if out is None else out
    for i, sample in enumerate(x):
        out[i] = feature(sample, sample_rate, **p)
    return out
