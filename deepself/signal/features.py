"""Feature maps of signals: pure functions, array in, array out, looked up by name in ``FEATURES``.

Every feature takes one sample ``x`` of shape (channels, time) and its sampling rate, then its own
parameters keyword-only, and returns a float32 map of shape (channels, rows, frames):

- ``raw``: the signal itself, (channels, time);
- ``spectrogram``: ``1 + n_fft // 2`` STFT bins, lowest frequency first, by STFT frames;
- ``logmel``: ``n_mels`` Mel bands, lowest first, by STFT frames;
- ``scalogram``: one row per wavelet scale, smallest scale (highest frequency) first, by
  ``ceil(time / hop)`` columns.

A config names a feature and its parameters; :func:`deepself.signal.params.check_params` checks
them against the signal before any work and returns them complete, so that a stored feature map
says exactly how it was made. The scalogram's reference is :mod:`deepself.signal.wavelets`'s.
:func:`compute` runs a feature on one sample or a batch: by default the batched
PyTorch implementation of :mod:`deepself.signal.fast` (CPU or CUDA), which gives the same maps as
the functions here; these stay the reference (``backend="reference"``) the tests compare with.
"""

from __future__ import annotations

import numpy as np

from deepself.errors import DeepselfError
from deepself.signal.params import check_params, output_shape
from deepself.signal.wavelets import scalogram


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

    x = _logmel_input(x, n_fft, win_length, window_at, peak_normalize)
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
    S = _logmel_log(S, log, log_gain, log_offset, ref, amin, top_db)
    return (S * scale).astype(np.float32, copy=False)


def _logmel_input(x: np.ndarray, n_fft: int, win_length: int | None, window_at: str,
                  peak_normalize: bool) -> np.ndarray:
    """The signal that :func:`logmel` transforms: peak-normalised, and padded for ``window_at="start"``."""
    if peak_normalize:
        peak = np.max(np.abs(x))
        if peak > 0:
            x = x / peak
    if window_at == "start":
        # librosa centres the window in n_fft: zeros before and after the signal make its frames
        # start where tf.signal.stft's do.
        before = (n_fft - (win_length or n_fft)) // 2
        x = np.pad(x, [(0, 0)] * (x.ndim - 1) + [(before, n_fft - (win_length or n_fft) - before)])
    return x


def _logmel_log(S: np.ndarray, log: str, log_gain: float, log_offset: float, ref, amin: float,
                top_db: float | None) -> np.ndarray:
    """:func:`logmel`'s logarithm of the Mel power ``S``: dB, ``log10(1 + log_gain * S)`` or ``log(S + log_offset)``."""
    if log == "db":
        import librosa  # already imported by logmel

        S = librosa.power_to_db(S, ref=_db_reference(ref), amin=amin, top_db=top_db)
    elif log == "offset":
        S = np.log(S + log_offset)
    else:
        S = np.log10(S * log_gain + 1.0)
    return S


FEATURES = {"raw": raw, "spectrogram": spectrogram, "logmel": logmel, "scalogram": scalogram}


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
