"""The Mel matrix and the Hann window that the feature job builds without librosa are librosa's, to the bit."""

import itertools
import warnings

import librosa
import numpy as np
import pytest

from deepself.signal import fast_stft
from deepself.signal.mel import mel_filters


@pytest.mark.parametrize("win_length, n_fft", [(1, 1), (2, 2), (5, 8), (255, 256), (400, 512), (1023, 2049),
                                               (2048, 2048)])
def test_hann_window_is_librosas(win_length, n_fft):
    ours = fast_stft._window("hann", win_length, n_fft)
    theirs = librosa.util.pad_center(librosa.filters.get_window("hann", win_length, fftbins=True), size=n_fft)
    assert ours.dtype == theirs.dtype
    np.testing.assert_array_equal(ours, theirs)


def test_other_windows_are_librosas():
    np.testing.assert_array_equal(fast_stft._window("hamming", 300, 512),
                                  librosa.util.pad_center(librosa.filters.get_window("hamming", 300), size=512))


@pytest.mark.parametrize("norm", ["slaney", None, 1, 2.0])
def test_mel_filters_are_librosas(norm):
    cases = itertools.product([16000, 44100, 173.61], [256, 2048], [13, 128], [0.0, 300.0], [False, True])
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # librosa's "Empty filters": some cases have them, on purpose
        for sr, n_fft, n_mels, fmin, htk in cases:
            if fmin >= sr / 2:
                continue
            ours = mel_filters(sr, n_fft, n_mels, fmin, sr / 2, htk, norm)
            theirs = librosa.filters.mel(sr=sr, n_fft=n_fft, n_mels=n_mels, fmin=fmin, fmax=sr / 2, htk=htk, norm=norm)
            assert ours.dtype == theirs.dtype == np.float32
            np.testing.assert_array_equal(ours, theirs, err_msg=f"{sr} {n_fft} {n_mels} {fmin} {htk}")
