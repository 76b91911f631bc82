"""The batched PyTorch feature maps equal the librosa / pywt references, sample by sample, channel by channel."""

import librosa
import numpy as np
import pytest
import pywt
import torch

from deepself.errors import DeepselfError
from deepself.signal import fast, fast_cwt, fast_stft
from deepself.signal.features import FEATURES, compute
from deepself.signal.params import check_params

SAMPLE_RATE = 8000
N_SAMPLES = 4000
CUDA = pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA GPU visible to PyTorch on this machine")


def assert_matches(actual, expected):
    """The issue's tolerance: 1e-4 relative, and 1e-4 of the map's peak magnitude near zero."""
    assert actual.shape == expected.shape and actual.dtype == np.float32
    np.testing.assert_allclose(actual, expected, rtol=1e-4, atol=1e-4 * np.abs(expected).max())


@pytest.fixture(scope="module")
def batch():
    """Three samples of two channels: tones and noise, the same 40 dB quieter, and a silent stretch."""
    rng = np.random.default_rng(0)
    t = np.arange(N_SAMPLES) / SAMPLE_RATE
    loud = np.stack([np.sin(2 * np.pi * 440 * t) + 0.05 * rng.standard_normal(N_SAMPLES),
                     0.3 * np.sin(2 * np.pi * 1500 * t) * np.hanning(N_SAMPLES)])
    gappy = rng.standard_normal((2, N_SAMPLES))
    gappy[:, 1000:2500] = 0.0  # digital silence: bins at the amin floor
    return np.stack([loud, 1e-2 * loud, gappy]).astype(np.float32)


def reference(kind, x, params):
    p = check_params(kind, params, SAMPLE_RATE, x.shape[-1], "k")
    return np.stack([FEATURES[kind](sample, SAMPLE_RATE, **p) for sample in x])


CASES = {
    "spectrogram": ("spectrogram", {}),
    "spectrogram-odd-hamming-max": (
        "spectrogram", {"n_fft": 255, "hop_length": 64, "window": "hamming", "ref": "max"}),
    "spectrogram-amplitude": (
        "spectrogram", {"n_fft": 400, "win_length": 300, "power": 1.0, "top_db": 60.0, "amin": 1e-5}),
    "spectrogram-uncentred-unclipped": (
        "spectrogram", {"n_fft": 256, "center": False, "hop_length": 100, "top_db": None}),
    "spectrogram-linear-kaiser": ("spectrogram", {"log": False, "power": 1.5, "window": ["kaiser", 8.0]}),
    "spectrogram-linear-edge": ("spectrogram", {"log": False, "power": 1.0, "pad_mode": "edge"}),
    # hop > n_fft / 2: librosa pads a tail shorter than the padding
    "spectrogram-reflect-long-hop": ("spectrogram", {"pad_mode": "reflect", "n_fft": 256, "hop_length": 200}),
    "spectrogram-symmetric-long-hop": ("spectrogram", {"pad_mode": "symmetric", "n_fft": 256, "hop_length": 250}),
    "spectrogram-linear-ramp": ("spectrogram", {"pad_mode": "linear_ramp", "n_fft": 300}),
    "spectrogram-reflect-amplitude-unclipped": (
        "spectrogram", {"pad_mode": "reflect", "power": 1.0, "ref": "max", "top_db": None}),
    "logmel": ("logmel", {}),
    "logmel-htk-band": (
        "logmel", {"n_fft": 512, "hop_length": 128, "n_mels": 40, "fmin": 50.0, "fmax": 3500.0, "htk": True,
                   "norm": None}),
    "logmel-amplitude-unclipped": ("logmel", {"n_fft": 1024, "power": 1.0, "ref": "max", "top_db": None, "norm": 2.0}),
    "logmel-symmetric-ref": (
        "logmel", {"n_fft": 512, "n_mels": 32, "pad_mode": "symmetric", "top_db": 40.0, "ref": 10.0}),
    "logmel-empty-filters": ("logmel", {"n_fft": 256, "n_mels": 128}),  # more filters than bins
    # aisfx's input: peak-normalised, log10(1 + 10000 S) / 9.4578, unit-area HTK filters
    "logmel-aisfx": (
        "logmel", {"n_fft": 512, "hop_length": 256, "n_mels": 40, "htk": True, "norm": 1.0, "peak_normalize": True,
                   "log": "log10_1p", "scale": 1 / 9.457798957824707}),
    "logmel-log10-1p-gain-slaney": ("logmel", {"n_fft": 256, "log": "log10_1p", "log_gain": 50.0, "power": 1.0}),
    "logmel-peak-db-scaled": (
        "logmel", {"n_fft": 512, "n_mels": 32, "peak_normalize": True, "scale": 0.01, "norm": 1, "top_db": 60.0}),
    "scalogram": ("scalogram", {"n_scales": 16}),
    "scalogram-unsorted-scales": ("scalogram", {"scales": [40.0, 2.0, 8.0, 3.5], "hop": 3}),
    "scalogram-mexh-log": ("scalogram", {"wavelet": "mexh", "n_scales": 12, "fmin": 20.0, "fmax": 1500.0, "log": True}),
    "scalogram-cmor": ("scalogram", {"wavelet": "cmor1.5-1.0", "n_scales": 10, "fmin": 30.0}),
    "scalogram-shan-hop": ("scalogram", {"wavelet": "shan1.5-1.0", "n_scales": 6, "hop": 7}),
    "scalogram-fbsp": ("scalogram", {"wavelet": "fbsp1-1.5-1.0", "n_scales": 6}),
    "scalogram-gaus-conv": ("scalogram", {"wavelet": "gaus3", "n_scales": 6, "method": "conv"}),
}


@pytest.mark.filterwarnings("ignore:Empty filters detected")
@pytest.mark.parametrize("kind, params", CASES.values(), ids=CASES)
def test_batch_equals_reference_per_sample_and_channel(batch, kind, params):
    assert_matches(compute(kind, batch, SAMPLE_RATE, params), reference(kind, batch, params))


@pytest.mark.parametrize("precision", ["float32", "float64"])
@pytest.mark.parametrize(
    "kind, params", [CASES[n] for n in ("spectrogram", "logmel-htk-band", "logmel-aisfx", "scalogram-mexh-log")])
def test_either_precision_equals_reference(batch, kind, params, precision):
    p = check_params(kind, params, SAMPLE_RATE, N_SAMPLES, "k")
    assert_matches(fast.compute(kind, batch, SAMPLE_RATE, p, device="cpu", precision=precision),
                   reference(kind, batch, params))


@pytest.mark.parametrize("kind", ["spectrogram", "logmel"])
def test_unclipped_db_maps_equal_the_reference_by_default(batch, kind):
    """float32 FFTs miss the silent bins of a dB map without top_db: the default precision gives the
    reference's numbers there all the same."""
    params = {"top_db": None}
    p = check_params(kind, params, SAMPLE_RATE, N_SAMPLES, "k")
    assert_matches(fast.compute(kind, batch, SAMPLE_RATE, p), reference(kind, batch, params))


@pytest.mark.parametrize(
    "kind, params, precision",
    [
        ("spectrogram", {}, "float32"),
        ("spectrogram", {"top_db": 100.0}, "float64"),
        ("spectrogram", {"log": False, "top_db": None}, "float32"),
        ("logmel", {"top_db": None}, "float64"),
        ("logmel", {"log": "log10_1p"}, "float32"),
        ("logmel", {"peak_normalize": True, "top_db": None}, "float64"),
        ("scalogram", {}, "float32"),
    ],
)
def test_auto_precision(kind, params, precision):
    assert fast.auto_precision(kind, check_params(kind, params, SAMPLE_RATE, N_SAMPLES, "k")) == precision


@pytest.mark.parametrize(
    "kind, params", [CASES[n] for n in ("spectrogram-odd-hamming-max", "logmel", "scalogram-unsorted-scales")])
def test_sub_blocks_give_the_same_maps(batch, kind, params, monkeypatch):
    """A block is cut into sub-blocks to bound memory; the cut changes nothing."""
    whole = compute(kind, batch, SAMPLE_RATE, params)
    monkeypatch.setitem(fast.MEMORY_BUDGET, "cpu", 1)  # one sample per step
    np.testing.assert_array_equal(compute(kind, batch, SAMPLE_RATE, params), whole)


def test_threads_on_sub_blocks_give_the_serial_maps_and_restore_the_thread_count(batch, monkeypatch):
    monkeypatch.setitem(fast.MEMORY_BUDGET, "cpu", 1)  # one sample per sub-block
    threads = torch.get_num_threads()
    try:
        torch.set_num_threads(1)
        serial = compute("logmel", batch, SAMPLE_RATE, {})
        torch.set_num_threads(2)
        np.testing.assert_array_equal(compute("logmel", batch, SAMPLE_RATE, {}), serial)
        assert torch.get_num_threads() == 2
        monkeypatch.setattr(fast, "logmel", lambda *args, **kwargs: 1 / 0)
        with pytest.raises(ZeroDivisionError):
            compute("logmel", batch, SAMPLE_RATE, {})
        assert torch.get_num_threads() == 2
    finally:
        torch.set_num_threads(threads)


def test_scalogram_groups_fft_lengths_and_needs_only_half_the_filter():
    """Short and long wavelets get different FFT lengths, each at least time + ceil(L / 2)."""
    p = check_params("scalogram", {"n_scales": 32}, SAMPLE_RATE, N_SAMPLES, "k")
    groups = fast_cwt._cwt_filters("morl", tuple(p["scales"]), N_SAMPLES)
    assert len(groups) > 1
    assert [g[0] for g in groups] == sorted(g[0] for g in groups)
    covered = []
    for fft_length, rows, spectra in groups:
        scales = np.asarray(p["scales"])[rows]
        filter_lengths = np.floor(scales * 16 + 1)  # morl lives on [-8, 8]
        assert fft_length >= N_SAMPLES + np.ceil(filter_lengths.max() / 2)
        assert fft_length < N_SAMPLES + filter_lengths.max() - 1  # shorter than pywt's
        covered.extend(range(32)[rows])
    assert covered == list(range(32))


def test_scalogram_equals_pywt_for_a_signal_shorter_than_its_wavelets():
    """Scales whose wavelet is many times the signal: the crop still lands where pywt's does."""
    x = np.random.default_rng(3).standard_normal((1, 1, 300)).astype(np.float32)
    scales = [1.7, 60.0, 300.0]
    expected = np.abs(pywt.cwt(x[0], scales, "morl", method="fft", axis=-1)[0]).transpose(1, 0, 2)
    assert_matches(compute("scalogram", x, SAMPLE_RATE, {"scales": scales})[0], expected)


@pytest.mark.parametrize("n_mels, fmin, htk, norm", [
    (20, 100.0, False, "slaney"), (128, 0.0, True, "slaney"), (37, 0.0, False, "slaney"), (96, 0.0, True, 1),
    (40, 0.0, False, None),
])
def test_logmel_uses_librosa_mel_matrix_in_bands(n_mels, fmin, htk, norm):
    """The bands of Mel filters hold librosa's whole matrix, each over fewer bins than all."""
    p = check_params("logmel", {"n_mels": n_mels, "fmin": fmin, "htk": htk, "norm": norm}, SAMPLE_RATE, N_SAMPLES, "k")
    mel = fast_stft._mel_basis(float(SAMPLE_RATE), p["n_fft"], n_mels, fmin, p["fmax"], htk, p["norm"])
    expected = librosa.filters.mel(sr=SAMPLE_RATE, n_fft=p["n_fft"], n_mels=n_mels, fmin=fmin, htk=htk, norm=norm)
    np.testing.assert_array_equal(mel, expected)
    if norm == 1:  # librosa's norm=1.0: each filter's weights sum to 1
        np.testing.assert_allclose(mel.sum(axis=1), 1.0, rtol=1e-6)
    bands = fast_stft._mel_bands(float(SAMPLE_RATE), p["n_fft"], n_mels, fmin, p["fmax"], htk, p["norm"])
    assert sum(high - low for *_, low, high, _ in bands) < 1.2 * (1 + p["n_fft"] // 2)


def test_unknown_backend_names_the_key(batch):
    with pytest.raises(DeepselfError, match=r"^features\.x: backend 'numba'"):
        compute("logmel", batch, SAMPLE_RATE, {}, key="features.x", backend="numba")


def test_default_device_is_cuda_when_available():
    assert fast.default_device().type == ("cuda" if torch.cuda.is_available() else "cpu")


@CUDA
@pytest.mark.parametrize("kind, params", [
    CASES[name] for name in ("spectrogram", "spectrogram-uncentred-unclipped", "logmel", "logmel-amplitude-unclipped",
                             "logmel-aisfx", "scalogram-unsorted-scales", "scalogram-cmor")
])
def test_cuda_equals_reference(batch, kind, params):
    assert_matches(compute(kind, batch, SAMPLE_RATE, params, device="cuda"), reference(kind, batch, params))


def test_an_empty_batch_has_the_shape_of_an_empty_batch():
    assert compute("logmel", np.zeros((0, 2, N_SAMPLES), np.float32), SAMPLE_RATE, {}).shape == (0, 2, 128, 8)
