"""The parameters of the feature maps: checked against the signal before any work, and completed.

:func:`check_params` checks a feature's parameters (those of its reference function in
:data:`deepself.signal.features.FEATURES`) against the config schema and the signal, and returns
them complete, so that a stored feature map says exactly how it was made; :func:`output_shape`
gives the shape of a map without computing it. The workflow runs these while it is parsed
(:mod:`deepself.config.checks`): this module imports numpy only, and librosa only for a
parametrised window, which no config can give.
"""

from __future__ import annotations

import inspect
import math
import numbers

import numpy as np

from deepself.errors import DeepselfError
from deepself.signal.mel import empty_mel_filters, most_mel_filters
from deepself.signal.wavelets import _default_fmin, _scales_for

# librosa's pad modes for centred frames, less "empty": it pads with uninitialised memory, so the
# same signal would not give the same features twice.
_PAD_MODES = ("constant", "edge", "linear_ramp", "reflect", "symmetric")
_CWT_METHODS = ("fft", "conv")
# The parameters that only one logarithm of logmel reads.
_LOGMEL_LOG_PARAMS = {"db": ("ref", "amin", "top_db"), "log10_1p": ("log_gain",), "offset": ("log_offset",)}


def _defaults(kind: str) -> dict:
    """The feature's own parameters (after ``x, sample_rate``) with their defaults."""
    from deepself.signal.features import FEATURES  # not at the top: features imports this module

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
    from deepself.signal.features import FEATURES  # not at the top: features imports this module

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
