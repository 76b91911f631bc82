"""Shared test data of the model tests."""

import numpy as np
import pytest


def _sine_signals(n, n_chans, n_times, seed=0):
    """``n`` float32 signals (n, n_chans, n_times): a sine of random frequency plus noise per channel."""
    rng = np.random.default_rng(seed)
    t = np.arange(n_times) / n_times
    return (np.sin(2 * np.pi * rng.uniform(1, 8, (n, n_chans, 1)) * t)
            + 0.5 * rng.standard_normal((n, n_chans, n_times))).astype(np.float32)


@pytest.fixture
def signals():
    """:func:`_sine_signals`, the rockets' test input."""
    return _sine_signals
