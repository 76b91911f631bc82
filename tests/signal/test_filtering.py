"""Band-pass filter: equal to scipy's zero-phase reference, with the response a band-pass should have."""

import numpy as np
import pytest
import scipy.signal

from deepself.errors import DeepselfError
from deepself.signal.filtering import bandpass, check_band

SAMPLE_RATE = 250.0  # an EEG rate
BAND = (8.0, 30.0)


def tone(frequency, n=2000, sample_rate=SAMPLE_RATE):
    return np.sin(2 * np.pi * frequency * np.arange(n) / sample_rate)


def rms_db(x):
    return 20 * np.log10(np.sqrt(np.mean(x**2, axis=-1)))


@pytest.fixture
def eeg():
    """Three channels of tones plus noise, seeded."""
    rng = np.random.default_rng(0)
    tones = np.stack([tone(5.0), tone(12.0), tone(50.0)])
    return (tones + 0.3 * rng.standard_normal(tones.shape)).astype(np.float32)


@pytest.mark.parametrize("order", [2, 4, 6])
def test_equals_scipy_sosfiltfilt_on_channels(eeg, order):
    sos = scipy.signal.butter(order, BAND, "bandpass", fs=SAMPLE_RATE, output="sos")
    expected = scipy.signal.sosfiltfilt(sos, eeg, axis=-1)
    y = bandpass(eeg, SAMPLE_RATE, BAND, order)
    assert y.dtype == np.float32 and y.shape == eeg.shape
    np.testing.assert_allclose(y, expected, rtol=1e-5, atol=1e-6)


def test_filters_each_channel_alone_for_any_leading_shape(eeg):
    epochs = np.stack([eeg, eeg[::-1]])  # (epochs, channels, time)
    y = bandpass(epochs, SAMPLE_RATE, BAND)
    assert y.shape == epochs.shape
    for e in range(2):
        for c in range(3):
            np.testing.assert_allclose(y[e, c], bandpass(epochs[e, c], SAMPLE_RATE, BAND), atol=1e-6)


def test_passes_a_tone_in_the_band_and_stops_tones_outside():
    centre = np.sqrt(BAND[0] * BAND[1])  # a Butterworth band-pass is flattest at the geometric centre
    x = np.stack([tone(centre), tone(3.0), tone(60.0)])
    y = bandpass(x, SAMPLE_RATE, BAND, order=4)
    middle = slice(500, -500)  # away from the padded edges
    gain_db = rms_db(y[:, middle]) - rms_db(x[:, middle])
    assert abs(gain_db[0]) < 0.1
    assert gain_db[1] < -30 and gain_db[2] < -30


def test_band_edges_are_at_minus_6_db_after_both_passes():
    # One pass is -3 dB at the edges; forwards and backwards squares the response.
    x = np.stack([tone(BAND[0], n=20000), tone(BAND[1], n=20000)])
    y = bandpass(x, SAMPLE_RATE, BAND)
    middle = slice(2000, -2000)
    gain_db = rms_db(y[:, middle]) - rms_db(x[:, middle])
    np.testing.assert_allclose(gain_db, -6.02, atol=0.05)


@pytest.mark.parametrize(
    "band",
    [(30.0, 8.0), (0.0, 30.0), (-1.0, 30.0), (8.0, 125.0), (8.0, 200.0), (8.0,), "8-30", (8.0, 8.0)],
)
def test_bad_band_names_the_key(band):
    with pytest.raises(DeepselfError, match=r"preprocess\.filter\.band"):
        check_band(SAMPLE_RATE, band, 4, key="preprocess.filter")
    with pytest.raises(DeepselfError, match=r"preprocess\.filter\.band"):
        bandpass(np.zeros((2, 1000)), SAMPLE_RATE, band, key="preprocess.filter")


def test_nyquist_is_in_the_message():
    with pytest.raises(DeepselfError, match="Nyquist frequency 125 Hz"):
        check_band(SAMPLE_RATE, (8.0, 130.0), 4)


@pytest.mark.parametrize("order", [0, -2, 2.5, "4", True, None])
def test_bad_order_names_the_key(order):
    with pytest.raises(DeepselfError, match=r"eeg\.order"):
        bandpass(np.zeros((2, 1000)), SAMPLE_RATE, BAND, order, key="eeg")


def test_a_band_near_zero_and_nyquist_with_a_numpy_order_is_scipys_filter(eeg):
    band, order = [0.5, 124.0], np.int64(3)
    assert check_band(SAMPLE_RATE, band, order) is None
    sos = scipy.signal.butter(3, band, "bandpass", fs=SAMPLE_RATE, output="sos")
    np.testing.assert_allclose(bandpass(eeg, SAMPLE_RATE, band, order), scipy.signal.sosfiltfilt(sos, eeg, axis=-1),
                               rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("order", [1, 4, 8])
def test_too_short_signal_names_the_key_and_minimal_length(order):
    sos = scipy.signal.butter(order, BAND, "bandpass", fs=SAMPLE_RATE, output="sos")
    minimal = 3 * (2 * len(sos) + 1) + 1
    with pytest.raises(DeepselfError, match=rf"^eeg\.filter: .*at least {minimal} samples"):
        bandpass(np.ones((2, minimal - 1)), SAMPLE_RATE, BAND, order, key="eeg.filter")
    # scipy agrees: one sample more is enough.
    y = bandpass(np.ones((2, minimal)), SAMPLE_RATE, BAND, order, key="eeg.filter")
    np.testing.assert_allclose(y, scipy.signal.sosfiltfilt(sos, np.ones((2, minimal))), rtol=1e-5, atol=1e-6)
