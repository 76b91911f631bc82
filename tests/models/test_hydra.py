"""Hydra's transform and sparse scaler against aeon's (HydraTransformer, HydraClassifier's _SparseScaler)."""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

from deepself.errors import DeepselfError
from deepself.models import create_model
from deepself.training.ridge import FeatureScaler


@pytest.mark.parametrize("n_chans", [1, 3])
def test_the_counts_are_aeons(n_chans):
    from aeon.transformations.collection.convolution_based import HydraTransformer

    x = np.random.default_rng(0).normal(size=(8, n_chans, 100)).astype(np.float32)
    model = create_model("hydra", n_chans=n_chans, n_freqs=None, n_times=100, n_outputs=3)
    model.fit_features(x, seed=3)
    aeon = HydraTransformer(random_state=3, output_type="numpy").fit(x).transform(x)
    ours = model.hydra(torch.from_numpy(x)).numpy()
    assert ours.shape == aeon.shape == (8, model.n_features) and np.abs(aeon).sum() > 0
    np.testing.assert_array_equal(ours, aeon)
    other = create_model("hydra", n_chans=n_chans, n_freqs=None, n_times=100, n_outputs=3)
    other.fit_features(x, seed=4)  # another seed, other kernels
    assert not np.array_equal(other.hydra(torch.from_numpy(x)).numpy(), ours)


def test_the_sparse_scaler_is_hydras():
    from aeon.classification.convolution_based._hydra import _SparseScaler

    counts = torch.from_numpy(np.random.default_rng(1).normal(size=(30, 12)).astype(np.float32)) * 3
    counts[:, :4] = counts[:, :4].abs().round()  # count-like columns with zeros
    aeon = _SparseScaler()
    aeon.fit(counts)
    sparse = np.ones(12, dtype=bool)
    x = counts.clamp(0).sqrt().double().numpy()
    ours = FeatureScaler(sparse).fit(x).transform(x)
    np.testing.assert_allclose(ours, aeon.transform(counts).numpy(), atol=1e-5)
    assert (ours[x == 0] == 0).all()
    dense = FeatureScaler(None).fit(x).transform(x)  # without the mask: aeon's StandardScaler(with_mean=False)
    np.testing.assert_allclose(dense, x / x.std(0), rtol=1e-12)


def test_the_head_applies_the_sparse_scaling_it_was_fitted_with(signals):
    """The checkpoint's head gives the probabilities of the scaler the ridge saw."""
    from deepself.training.probe import Part

    x = signals(24, 1, 60)
    y = np.arange(24) % 3
    model = create_model("hydra", n_chans=1, n_freqs=None, n_times=60, n_outputs=3, n_groups=8).eval()
    model.fit_features(x, seed=0)
    features = model.forward_features(torch.from_numpy(x))
    assert (features == 0).any() and bool(model.head.sparse.all())
    _, best, _ = model.fit_head(features, Part.of_samples(np.arange(24), y), 3)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    rebuilt = create_model("hydra", n_chans=1, n_freqs=None, n_times=60, n_outputs=3, n_groups=8).eval()
    rebuilt.load_state_dict(torch.load(buffer, weights_only=True))
    with torch.no_grad():
        logits = rebuilt(torch.from_numpy(x)).double().numpy()
    scaler = FeatureScaler(np.ones(model.n_features, dtype=bool)).fit(features.double().numpy())
    scaled = scaler.transform(features.double().numpy())
    expected = (scaled @ model.head.linear.weight.detach().double().numpy().T
                + model.head.linear.bias.detach().double().numpy()) / model.head.temperature.item()
    np.testing.assert_allclose(logits, expected, atol=1e-3)
    assert best["cv"].startswith("leave-one-out")


def test_too_short_signals_are_refused():
    with pytest.raises(DeepselfError, match="at least 9"):
        create_model("hydra", n_chans=1, n_freqs=None, n_times=8, n_outputs=2)
