"""MultiRocket as a model: both of its transforms equal aeon's, its fitted state is all tensors, it reloads."""

import io

import numpy as np
import pytest
import torch
from aeon.transformations.collection.convolution_based import MultiRocket as aeon_multirocket

from deepself.errors import DeepselfError
from deepself.models import create_model
from deepself.models import multirocket
from deepself.models.multirocket import pooled


@pytest.mark.parametrize("n_chans,n_times,n_kernels", [(1, 300, 840), (3, 120, 840), (2, 64, 336), (1, 10, 84)])
def test_both_transforms_equal_aeons(signals, n_chans, n_times, n_kernels):
    """aeon's compiled transform (the CPU path) gives aeon's features exactly, and so does the torch
    code (other devices, export), up to the rounding of one mean: the same float32 convolutions
    compared with the same biases."""
    x = signals(10, n_chans, n_times)
    model = create_model("multirocket", n_chans=n_chans, n_freqs=None, n_times=n_times, n_outputs=3,
                         n_kernels=n_kernels)
    model.fit_features(x[:5], seed=7)
    reference = aeon_multirocket(n_kernels=n_kernels, random_state=7, n_jobs=1).fit(x[:5]).transform(x)
    assert reference.shape == (10, model.n_features) == (10, 8 * 84 * (n_kernels // 84))
    signals = torch.from_numpy(x)
    np.testing.assert_array_equal(model.forward_features(signals).numpy(), reference)
    ours = model.torch_features(signals).numpy().reshape(10, 2, 4, -1)
    blocks = reference.reshape(10, 2, 4, -1)
    # PPV, LSPV and MIPV are counts and index sums: exact; MPV sums float32 values in float64 in
    # another order than aeon's loop: equal to the last bit of the float32 result, or one off
    np.testing.assert_array_equal(ours[:, :, [0, 1, 3]], blocks[:, :, [0, 1, 3]])
    np.testing.assert_allclose(ours[:, :, 2], blocks[:, :, 2], rtol=3e-7, atol=0)
    ppv, lspv, mpv, mipv = reference.reshape(10, 2, 4, -1).transpose(2, 0, 1, 3)
    assert 0 < ppv.mean() < 1 and (mipv >= -1).all() and lspv.max() > 1  # not degenerate


def test_pooled_statistics_by_hand():
    values = torch.tensor([[[1.0, -2.0, 3.0, 0.5, -1.0, 4.0, 5.0]]])  # one kernel, one sample, 7 values
    stats = pooled(values, torch.tensor([[0.5]])).squeeze()
    # above 0.5: 1, 3, 4, 5 at indices 0, 2, 5, 6; below: -2, -1 at indices 1, 4 (0.5 itself is neither)
    ppv, lspv, mpv, mipv = stats.tolist()
    assert ppv == pytest.approx(4 / 7)
    assert lspv == 3  # the stretches 1 - 0, 4 - 1 and, to the end, 6 - 4
    assert mpv == pytest.approx((1 + 3 + 4 + 5 + 4 * 0.5) / 4)  # aeon's mean of value + bias
    assert mipv == pytest.approx((0 + 2 + 5 + 6) / 4)
    none = pooled(values, torch.tensor([[9.0]])).squeeze().tolist()
    assert none == [0.0, 1.0, 0.0, -1.0]  # every value below: stretches of one


def test_pooled_by_running_maximum_and_by_sort_agree():
    """Eager code takes a running maximum for the LSPV, export a sort (ONNX has no cummax): same values."""
    values = torch.from_numpy(np.random.default_rng(1).standard_normal((6, 3, 200)).astype(np.float32))
    biases = torch.tensor(np.linspace(-1.5, 1.5, 12, dtype=np.float32).reshape(6, 2))
    np.testing.assert_array_equal(pooled(values, biases, sort=False).numpy(), pooled(values, biases, sort=True).numpy())


def test_fitted_state_is_tensors_that_rebuild_the_same_model(signals):
    x = signals(8, 2, 90)
    model = create_model("multirocket", n_chans=2, n_freqs=None, n_times=90, n_outputs=4, n_kernels=252).eval()
    model.fit_features(x[:5], seed=1)
    assert not torch.equal(model.diff_biases, torch.zeros_like(model.diff_biases))
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)  # no pickled objects: tensors only
    assert {"dilations", "n_features_per_dilation", "biases", "diff_dilations", "diff_n_features_per_dilation",
            "diff_biases", "kernels", "combination_channels", "combination_sizes", "head.linear.weight",
            "head.linear.bias", "head.mean", "head.scale", "head.temperature", "head.sparse"} == set(state)
    rebuilt = create_model("multirocket", n_chans=2, n_freqs=None, n_times=90, n_outputs=4, n_kernels=252).eval()
    rebuilt.load_state_dict(state)
    signals = torch.from_numpy(x)
    assert torch.equal(rebuilt(signals), model(signals))
    with pytest.raises(DeepselfError, match="fitted on signals of"):
        model.fit_features(x[:, :1], seed=0)


@pytest.fixture
def aeon_without_compiled_transform(monkeypatch):
    """aeon as a release that renamed its private ``_transform_uni`` would be."""
    from aeon.transformations.collection.convolution_based import _multirocket

    monkeypatch.delattr(_multirocket, "_transform_uni")
    multirocket.aeon_functions.cache_clear()
    yield
    multirocket.aeon_functions.cache_clear()


def test_without_aeons_compiled_transform_the_cpu_runs_the_torch_code(signals, aeon_without_compiled_transform,
                                                                      caplog):
    x = signals(6, 1, 120)
    model = create_model("multirocket", n_chans=1, n_freqs=None, n_times=120, n_outputs=3, n_kernels=168).eval()
    model.fit_features(x[:4], seed=3)
    signals = torch.from_numpy(x)
    with caplog.at_level("WARNING", logger="deepself.models.multirocket"):
        features = model.forward_features(signals)
    np.testing.assert_array_equal(features.numpy(), model.torch_features(signals).numpy())
    assert "_transform_uni" in caplog.text and "torch instead" in caplog.text
    assert model(signals).shape == (6, 3)


def test_too_short_signals_and_too_few_kernels_are_refused():
    with pytest.raises(DeepselfError, match="at least 10"):
        create_model("multirocket", n_chans=1, n_freqs=None, n_times=9, n_outputs=2)
    with pytest.raises(DeepselfError, match="n_kernels"):
        create_model("multirocket", n_chans=1, n_freqs=None, n_times=64, n_outputs=2, n_kernels=50)
