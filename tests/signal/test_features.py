"""Feature maps: equal to librosa / pywt called directly, peaks where the tone is, shapes known ahead.

Every equality is checked for both backends of ``compute``: the batched PyTorch one (the default)
and the reference functions.
"""

import json
import re
from pathlib import Path

import librosa
import numpy as np
import pytest
import pywt
import soundfile

from deepself.errors import DeepselfError
from deepself.signal.features import FEATURES, compute
from deepself.signal.params import check_params, output_shape

REPO = Path(__file__).resolve().parents[2]
ESC10 = REPO.parent / "shared" / "data" / "esc10"
SAMPLE_RATE = 16000
N_SAMPLES = 4000  # 0.25 s
TONES = (1000.0, 2500.0)  # one tone per channel
KEY = "features.audio"
BACKENDS = ["torch", "reference"]


def assert_matches(actual, expected):
    """The issue's tolerance: 1e-4 relative, and 1e-4 of the map's peak magnitude near zero."""
    assert actual.shape == expected.shape and actual.dtype == np.float32
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


@pytest.fixture
def audio():
    """Two channels, a 1 kHz and a 2.5 kHz tone, plus a little seeded noise."""
    t = np.arange(N_SAMPLES) / SAMPLE_RATE
    tones = np.stack([np.sin(2 * np.pi * f * t) for f in TONES])
    noise = 0.01 * np.random.default_rng(0).standard_normal(tones.shape)
    return (tones + noise).astype(np.float32)


def power_spectrogram(x, **stft):
    return np.abs(librosa.stft(x, **stft)) ** 2


SPECTROGRAM_CASES = [
    (
        {},
        lambda x: librosa.power_to_db(power_spectrogram(x, n_fft=512, hop_length=128), ref=1.0, top_db=80.0),
    ),
    (
        {"n_fft": 256, "hop_length": 100, "win_length": 200, "window": "hamming", "center": False,
         "ref": "max"},
        lambda x: librosa.power_to_db(
            power_spectrogram(x, n_fft=256, hop_length=100, win_length=200, window="hamming", center=False),
            ref=np.max,
            top_db=80.0,
        ),
    ),
    (
        {"n_fft": 400, "power": 1.0, "pad_mode": "reflect", "top_db": 60.0, "amin": 1e-5},
        lambda x: librosa.amplitude_to_db(
            np.abs(librosa.stft(x, n_fft=400, pad_mode="reflect")), ref=1.0, amin=1e-5, top_db=60.0
        ),
    ),
    ({"log": False, "power": 1.5}, lambda x: np.abs(librosa.stft(x, n_fft=512)) ** 1.5),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("params, reference", SPECTROGRAM_CASES)
def test_spectrogram_equals_librosa(audio, params, reference, backend):
    assert_matches(compute("spectrogram", audio, SAMPLE_RATE, params, backend=backend), reference(audio))


@pytest.mark.parametrize("backend", BACKENDS)
def test_spectrogram_top_db_is_relative_to_the_loudest_channel(audio, backend):
    # The second channel is 100 dB below the first: all of it sits at the floor, peak - 80 dB.
    x = np.stack([audio[0], audio[0] * 1e-5])
    S = compute("spectrogram", x, SAMPLE_RATE, {}, backend=backend)
    np.testing.assert_allclose(S[1], S.max() - 80.0, atol=1e-3)
    assert S[0].max() - S[0].min() == pytest.approx(80.0, abs=1e-3)


@pytest.mark.parametrize("backend", BACKENDS)
def test_batch_takes_each_samples_own_peak(audio, backend):
    quiet = audio * 1e-2  # 40 dB down, still far above the amin floor
    batch = compute("spectrogram", np.stack([audio, quiet]), SAMPLE_RATE, {"ref": "max"}, backend=backend)
    assert batch.shape == (2, *output_shape("spectrogram", {"ref": "max"}, SAMPLE_RATE, N_SAMPLES, 2))
    for sample, S in zip([audio, quiet], batch):
        reference = librosa.power_to_db(power_spectrogram(sample, n_fft=512, hop_length=128), ref=np.max)
        assert_matches(S, reference)
    # With ref="max" per sample, a signal and a scaled copy give the same map.
    assert_matches(batch[1], batch[0])


LOGMEL_CASES = [
    ({}, dict(n_fft=2048, hop_length=512, n_mels=128), dict(ref=1.0, top_db=80.0)),
    (
        {"n_mels": 40, "fmin": 50.0, "fmax": 7000.0, "htk": True, "norm": None, "hop_length": 256},
        dict(n_fft=2048, hop_length=256, n_mels=40, fmin=50.0, fmax=7000.0, htk=True, norm=None),
        dict(ref=1.0, top_db=80.0),
    ),
    (
        {"n_fft": 1024, "power": 1.0, "ref": "max", "top_db": None, "window": ["kaiser", 8.0]},
        dict(n_fft=1024, hop_length=512, power=1.0, window=("kaiser", 8.0)),
        dict(ref=np.max, top_db=None),
    ),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("params, mel, db", LOGMEL_CASES)
def test_logmel_equals_librosa(audio, params, mel, db, backend):
    expected = librosa.power_to_db(librosa.feature.melspectrogram(y=audio, sr=SAMPLE_RATE, **mel), **db)
    assert_matches(compute("logmel", audio, SAMPLE_RATE, params, backend=backend), expected)


LOG10_1P_CASES = [
    ({"log": "log10_1p"}, dict(n_fft=2048, hop_length=512, n_mels=128), 10000.0, 1.0),
    (
        {"log": "log10_1p", "log_gain": 100.0, "scale": 0.25, "n_fft": 1024, "hop_length": 256, "n_mels": 40,
         "htk": True, "norm": 1.0},
        dict(n_fft=1024, hop_length=256, n_mels=40, htk=True, norm=1.0),
        100.0,
        0.25,
    ),
]


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("params, mel, gain, scale", LOG10_1P_CASES)
def test_logmel_log10_1p_equals_librosa(audio, params, mel, gain, scale, backend):
    expected = scale * np.log10(1 + gain * librosa.feature.melspectrogram(y=audio, sr=SAMPLE_RATE, **mel))
    assert_matches(compute("logmel", audio, SAMPLE_RATE, params, backend=backend), expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_logmel_scale_multiplies_the_db_map(audio, backend):
    expected = 0.5 * librosa.power_to_db(librosa.feature.melspectrogram(y=audio, sr=SAMPLE_RATE), top_db=80.0)
    assert_matches(compute("logmel", audio, SAMPLE_RATE, {"scale": 0.5}, backend=backend), expected)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("log", ["db", "log10_1p"])
def test_peak_normalize_divides_each_sample_by_its_peak_over_all_channels(audio, log, backend):
    params = {"peak_normalize": True, "log": log}
    quiet = audio * np.float32(1e-3)
    quiet[1] *= np.float32(0.1)  # one channel 20 dB below the other: kept, the peak is the sample's
    silent = np.zeros_like(audio)
    maps = compute("logmel", np.stack([quiet, silent]), SAMPLE_RATE, params, backend=backend)
    peak = np.abs(quiet).max()
    assert_matches(maps[0], compute("logmel", quiet / peak, SAMPLE_RATE, {"log": log}, backend=backend))
    # A silent sample stays silent, no NaN: the amin floor in dB (10 log10(1e-10)), zero for log10(1 + S).
    np.testing.assert_allclose(maps[1], np.full(maps[1].shape, -100.0 if log == "db" else 0.0), atol=1e-4)


AISFX_SAMPLE_RATE = 44100
AISFX_PARAMS = {"n_fft": 2048, "hop_length": 1024, "n_mels": 96, "htk": True, "norm": 1.0, "peak_normalize": True,
                "log": "log10_1p", "log_gain": 10000.0, "scale": 1 / 9.457798957824707}


def aisfx_input(y):
    """The input of aisfx's ConvBlocks, transcribed from aisfx 0.1.2 (librosa front end).

    ``aisfx.spectrogram.spectrogram_librosa.compute_spectrogram`` (after ``librosa.load``) then
    ``aisfx.preprocessing.spectrogram_normalize(spec, "original")``, min 0 and max 9.4578.
    """
    peak = np.max(np.abs(y))
    y = y / (1 if peak == 0 else peak)
    S = librosa.feature.melspectrogram(y=y, sr=AISFX_SAMPLE_RATE, n_mels=96, norm=1.0, fmin=0, fmax=22050,
                                       htk=True, power=2.0, hop_length=1024, win_length=2048)
    return (np.log10(S * 10000.0 + 1) - 0) / (9.457798957824707 - 0)


@pytest.mark.parametrize("backend", BACKENDS)
def test_logmel_reproduces_the_aisfx_input_on_a_synthetic_clip(backend):
    """5 s at 44.1 kHz, the length of an ESC-50 clip: a gliding tone over noise, at a low level."""
    t = np.arange(5 * AISFX_SAMPLE_RATE) / AISFX_SAMPLE_RATE
    rng = np.random.default_rng(4)
    y = 0.05 * np.sin(2 * np.pi * (200 * t + 300 * t**2)) + 0.002 * rng.standard_normal(t.size)
    y = y.astype(np.float32)
    expected = aisfx_input(y)
    assert expected.shape == (96, 216)
    assert_matches(compute("logmel", y[None], AISFX_SAMPLE_RATE, AISFX_PARAMS, backend=backend)[0], expected)


@pytest.mark.parametrize("backend", BACKENDS)
def test_logmel_reproduces_the_aisfx_input_on_an_esc10_clip(backend):
    clips = sorted(ESC10.glob("*/*.ogg"))
    if not clips:
        pytest.skip(f"no ESC-10 clips under {ESC10} (optional data)")
    # What aisfx's librosa.load(path, sr=44100) reads: ESC-50 clips are mono at 44.1 kHz already.
    y, sample_rate = soundfile.read(clips[0], dtype="float32")
    assert sample_rate == AISFX_SAMPLE_RATE and y.ndim == 1
    assert_matches(compute("logmel", y[None], AISFX_SAMPLE_RATE, AISFX_PARAMS, backend=backend)[0], aisfx_input(y))


def cwt_magnitude(x, scales, wavelet, **kwargs):
    coefficients, _ = pywt.cwt(x, scales, wavelet, sampling_period=1 / SAMPLE_RATE, axis=-1, **kwargs)
    return np.abs(np.moveaxis(coefficients, 0, 1))


@pytest.mark.parametrize("backend", BACKENDS)
def test_scalogram_equals_pywt_conv_on_given_scales(audio, backend):
    scales = [2.0, 3.5, 8.0, 16.0, 40.0]
    S = compute("scalogram", audio, SAMPLE_RATE, {"scales": scales, "method": "conv"}, backend=backend)
    assert_matches(S, cwt_magnitude(audio, scales, "morl"))


@pytest.mark.parametrize("backend", BACKENDS)
def test_scalogram_fft_method_equals_pywt_conv(audio, backend):
    """The default (FFT) convolution gives pywt's direct convolution, on the default scales."""
    S = compute("scalogram", audio, SAMPLE_RATE, {}, backend=backend)
    scales = check_params("scalogram", {}, SAMPLE_RATE, N_SAMPLES, KEY)["scales"]
    assert_matches(S, cwt_magnitude(audio, scales, "morl", method="conv"))


@pytest.mark.parametrize(
    "params, wavelet, frequencies, keep",
    [
        ({"wavelet": "mexh", "n_scales": 16, "fmin": 100.0, "fmax": 2000.0, "hop": 3}, "mexh",
         np.geomspace(2000.0, 100.0, 16), lambda S: S[..., ::3]),
        ({"wavelet": "cmor1.5-1.0", "n_scales": 8, "fmin": 200.0, "log": True}, "cmor1.5-1.0",
         np.geomspace(SAMPLE_RATE / 4, 200.0, 8), np.log1p),
    ],
)
@pytest.mark.parametrize("backend", BACKENDS)
def test_scalogram_equals_pywt_on_frequency_range(audio, params, wavelet, frequencies, keep, backend):
    scales = pywt.frequency2scale(wavelet, frequencies / SAMPLE_RATE)
    expected = keep(cwt_magnitude(audio, scales, wavelet, method="fft"))
    assert_matches(compute("scalogram", audio, SAMPLE_RATE, params, backend=backend), expected)


def test_default_scales_descend_log_spaced_from_quarter_rate_to_four_periods():
    p = check_params("scalogram", {"n_scales": 32}, SAMPLE_RATE, N_SAMPLES, KEY)
    frequencies = pywt.scale2frequency("morl", np.array(p["scales"])) * SAMPLE_RATE
    assert frequencies[0] == pytest.approx(SAMPLE_RATE / 4) == p["fmax"]
    assert frequencies[-1] == pytest.approx(4 * SAMPLE_RATE / N_SAMPLES) == p["fmin"]
    ratios = frequencies[1:] / frequencies[:-1]
    assert np.all(ratios < 1)
    np.testing.assert_allclose(ratios, ratios[0])


def test_raw_is_the_signal(audio):
    np.testing.assert_array_equal(compute("raw", audio, SAMPLE_RATE, {}), audio)
    assert FEATURES["raw"](audio, SAMPLE_RATE) is audio


def middle_mean(S):
    """Mean over the middle half of the frames, per channel and row (no edge effects)."""
    frames = S.shape[-1]
    return S[..., frames // 4 : -frames // 4].mean(axis=-1)


def test_spectrogram_peaks_in_the_bin_nearest_each_tone(audio):
    n_fft = 300  # bins 53.3 Hz apart: the tones fall between bins
    S = compute("spectrogram", audio, SAMPLE_RATE, {"n_fft": n_fft})
    bins = librosa.fft_frequencies(sr=SAMPLE_RATE, n_fft=n_fft)
    for channel, f in enumerate(TONES):
        assert middle_mean(S)[channel].argmax() == np.abs(bins - f).argmin()


@pytest.mark.parametrize("n_mels", [40, 128])
def test_logmel_peaks_in_the_band_centred_nearest_each_tone(audio, n_mels):
    S = compute("logmel", audio, SAMPLE_RATE, {"n_mels": n_mels, "n_fft": 1024, "hop_length": 256})
    centres = librosa.mel_frequencies(n_mels + 2, fmin=0.0, fmax=SAMPLE_RATE / 2)[1:-1]
    for channel, f in enumerate(TONES):
        assert middle_mean(S)[channel].argmax() == np.abs(centres - f).argmin()


def test_scalogram_peaks_at_the_scale_nearest_each_tone(audio):
    p = check_params("scalogram", {}, SAMPLE_RATE, N_SAMPLES, KEY)
    S = compute("scalogram", audio, SAMPLE_RATE, p)
    frequencies = pywt.scale2frequency("morl", np.array(p["scales"])) * SAMPLE_RATE
    for channel, f in enumerate(TONES):
        assert middle_mean(S)[channel].argmax() == np.abs(frequencies - f).argmin()


SHAPE_CASES = [
    ("raw", {}),
    ("spectrogram", {}),
    ("spectrogram", {"n_fft": 511, "hop_length": 100}),
    ("spectrogram", {"n_fft": 256, "hop_length": 7, "center": False}),
    ("spectrogram", {"n_fft": 400, "win_length": 300}),
    ("logmel", {}),
    ("logmel", {"n_fft": 1001, "hop_length": 333, "n_mels": 20, "center": False}),
    ("scalogram", {"n_scales": 10}),
    ("scalogram", {"n_scales": 5, "hop": 3}),
    ("scalogram", {"scales": [2.0, 4.0], "hop": 7}),
]


@pytest.mark.parametrize("n_samples", [4000, 4001])
@pytest.mark.parametrize("kind, params", SHAPE_CASES)
def test_output_shape_equals_real_shape(kind, params, n_samples):
    x = np.random.default_rng(1).standard_normal((3, n_samples)).astype(np.float32)
    expected = output_shape(kind, params, SAMPLE_RATE, n_samples, 3)
    assert FEATURES[kind](x, SAMPLE_RATE, **params).shape == expected
    assert compute(kind, np.stack([x, x]), SAMPLE_RATE, params).shape == (2, *expected)


RESOLVE_CASES = [
    ("spectrogram", {}, {"hop_length": 128, "win_length": 512}),
    (
        "spectrogram",
        {"win_length": 200, "window": ["kaiser", 8.0]},
        {"hop_length": 50, "window": ("kaiser", 8.0)},
    ),
    ("logmel", {"n_fft": 1024}, {"fmax": SAMPLE_RATE / 2, "win_length": 1024, "hop_length": 512}),
    (
        "logmel",
        {"norm": 1, "log": "log10_1p", "log_gain": 1000, "scale": 2, "peak_normalize": True},
        {"norm": 1.0, "log_gain": 1000.0, "scale": 2.0, "ref": 1.0, "top_db": 80.0},
    ),
    ("scalogram", {"n_scales": 4}, {"fmin": 16.0, "fmax": 4000.0}),
    ("scalogram", {"scales": [2, 8]}, {"n_scales": 2, "fmax": 0.8125 / 2 * SAMPLE_RATE}),
]


@pytest.mark.parametrize("kind, params, resolved", RESOLVE_CASES)
def test_resolved_params_are_complete_and_recompute_the_same_map(audio, kind, params, resolved):
    p = check_params(kind, params, SAMPLE_RATE, N_SAMPLES, KEY)
    assert set(p) == set(check_params(kind, {}, SAMPLE_RATE, N_SAMPLES, KEY))
    for name, value in resolved.items():
        assert p[name] == pytest.approx(value) if isinstance(value, float) else p[name] == value
    assert check_params(kind, p, SAMPLE_RATE, N_SAMPLES, KEY) == p
    # Stored as JSON (HDF5 attributes), the parameters still say how to make the same map.
    stored = json.loads(json.dumps(p))
    np.testing.assert_array_equal(
        compute(kind, audio, SAMPLE_RATE, stored), compute(kind, audio, SAMPLE_RATE, params)
    )


BAD_PARAMS = [
    ("spectrogram", {"nfft": 256}, "nfft"),
    ("spectrogram", {"n_fft": 8000}, "n_fft"),
    ("spectrogram", {"n_fft": 512.5}, "n_fft"),  # 512.0 is an integer, as in the schema (JSON)
    ("spectrogram", {"n_fft": 256, "win_length": 512}, "win_length"),
    ("spectrogram", {"hop_length": 0}, "hop_length"),
    ("spectrogram", {"n_fft": 2}, "hop_length"),
    ("spectrogram", {"window": "nope"}, "window"),
    ("spectrogram", {"window": 3}, "window"),
    ("spectrogram", {"pad_mode": "wrap"}, "pad_mode"),
    ("spectrogram", {"power": 1.5}, "power"),
    ("spectrogram", {"power": 0}, "power"),
    ("spectrogram", {"ref": "min"}, "ref"),
    ("spectrogram", {"ref": 0}, "ref"),
    ("spectrogram", {"amin": 0}, "amin"),
    ("spectrogram", {"top_db": -10}, "top_db"),
    ("spectrogram", {"center": "yes"}, "center"),
    ("logmel", {"fmax": 9000}, "fmax"),
    ("logmel", {"fmin": 4000, "fmax": 3000}, "fmin"),
    ("logmel", {"fmin": -1}, "fmin"),
    ("logmel", {"fmin": "1e3"}, "fmin"),  # YAML 1.1 reads 1e3 as a string
    ("logmel", {"n_mels": 0}, "n_mels"),
    ("logmel", {"norm": "l2"}, "norm"),
    ("logmel", {"norm": "foo"}, "norm"),
    ("logmel", {"norm": 0}, "norm"),
    ("logmel", {"htk": 1}, "htk"),
    ("logmel", {"log": "ln"}, "log"),
    ("logmel", {"log": True}, "log"),
    ("logmel", {"log": "log10_1p", "log_gain": 0}, "log_gain"),
    ("logmel", {"log_gain": -1.0}, "log_gain"),
    ("logmel", {"log_gain": 100.0}, "log_gain"),  # log: db takes no gain
    ("logmel", {"log": "log10_1p", "top_db": 60.0}, "top_db"),
    ("logmel", {"log": "log10_1p", "top_db": None}, "top_db"),
    ("logmel", {"log": "log10_1p", "ref": "max"}, "ref"),
    ("logmel", {"log": "log10_1p", "amin": 1e-5}, "amin"),
    ("logmel", {"scale": 0}, "scale"),
    ("logmel", {"peak_normalize": "yes"}, "peak_normalize"),
    ("scalogram", {"wavelet": "db4"}, "wavelet"),
    ("scalogram", {"scales": [1, 0, 4]}, "scales"),
    ("scalogram", {"scales": [-2.0]}, "scales"),
    ("scalogram", {"scales": []}, "scales"),
    ("scalogram", {"scales": 4.0}, "scales"),
    ("scalogram", {"scales": [0.5, 4.0]}, "scales"),  # centre frequency 26 kHz: above Nyquist
    ("scalogram", {"scales": [2.0, 4.0], "n_scales": 64}, "n_scales"),
    ("scalogram", {"scales": [2.0, 4.0], "fmin": 10.0}, "fmin"),
    ("scalogram", {"hop": 0}, "hop"),
    ("scalogram", {"fmax": 9000}, "fmax"),
    ("scalogram", {"fmin": 500, "fmax": 400}, "fmin"),
    ("scalogram", {"fmin": 0}, "fmin"),
    ("scalogram", {"n_scales": 0}, "n_scales"),
    ("scalogram", {"method": "cuda"}, "method"),
    ("scalogram", {"log": "no"}, "log"),
    ("raw", {"n_fft": 512}, "n_fft"),
]


@pytest.mark.parametrize("kind, params, name", BAD_PARAMS)
def test_bad_parameter_names_its_key(audio, kind, params, name):
    pattern = "^" + re.escape(f"{KEY}.{name}") + r"(\.\d+)?:"  # a list's item (scales.0) is named by the schema
    with pytest.raises(DeepselfError, match=pattern):
        check_params(kind, params, SAMPLE_RATE, N_SAMPLES, KEY)
    with pytest.raises(DeepselfError, match=pattern):
        compute(kind, audio, SAMPLE_RATE, params, key=KEY)


def test_messages_say_what_is_wrong():
    with pytest.raises(DeepselfError, match="9000 Hz is above the Nyquist frequency 8000 Hz"):
        check_params("logmel", {"fmax": 9000}, SAMPLE_RATE, N_SAMPLES, KEY)
    with pytest.raises(DeepselfError, match="'db4' is not one of .*'morl'"):
        check_params("scalogram", {"wavelet": "db4"}, SAMPLE_RATE, N_SAMPLES, KEY)
    with pytest.raises(DeepselfError, match="longer than the signal \\(4000 samples\\)"):
        check_params("spectrogram", {"n_fft": 8000}, SAMPLE_RATE, N_SAMPLES, KEY)
    with pytest.raises(DeepselfError, match=re.escape("'ln' is not one of ['db', 'log10_1p', 'offset']")):
        check_params("logmel", {"log": "ln"}, SAMPLE_RATE, N_SAMPLES, KEY)
    with pytest.raises(DeepselfError, match="log_gain: 0 is less than or equal to the minimum of 0"):
        check_params("logmel", {"log": "log10_1p", "log_gain": 0}, SAMPLE_RATE, N_SAMPLES, KEY)
    with pytest.raises(DeepselfError, match="'foo' is not 'slaney', a positive number .* or null"):
        check_params("logmel", {"norm": "foo"}, SAMPLE_RATE, N_SAMPLES, KEY)
    with pytest.raises(DeepselfError, match="set to 60.0, but top_db applies only with log: db, not with log: log10_1p"):
        check_params("logmel", {"log": "log10_1p", "top_db": 60.0}, SAMPLE_RATE, N_SAMPLES, KEY)


def test_unknown_kind_names_the_key_and_lists_the_kinds():
    pattern = "^" + re.escape(f"{KEY}: ") + ".*raw, spectrogram, logmel, scalogram"
    with pytest.raises(DeepselfError, match=pattern):
        check_params("mfcc", {}, SAMPLE_RATE, N_SAMPLES, KEY)


def test_default_fmin_needs_a_long_enough_signal():
    # 16 samples: four periods give fmin = sample_rate / 4 = fmax.
    with pytest.raises(DeepselfError, match="^" + re.escape(f"{KEY}.fmin:") + ".*give fmin"):
        check_params("scalogram", {}, SAMPLE_RATE, 16, KEY)
    assert check_params("scalogram", {"fmin": 1000.0}, SAMPLE_RATE, 16, KEY)["fmin"] == 1000.0


@pytest.mark.parametrize("shape", [(N_SAMPLES,), (1, 1, 2, N_SAMPLES)])
def test_compute_wants_a_sample_or_a_batch(shape):
    with pytest.raises(DeepselfError, match="^" + re.escape(f"{KEY}: ")):
        compute("spectrogram", np.zeros(shape), SAMPLE_RATE, {}, key=KEY)


def test_compute_refuses_non_finite_signals(audio):
    batch = np.stack([audio, audio])
    batch[1, 0, 10] = np.nan
    with pytest.raises(DeepselfError, match=r"batch items \[1\]"):
        compute("logmel", batch, SAMPLE_RATE, {}, key=KEY)
