"""MiniRocket as a model: its torch transform equals aeon's, its fitted state is all tensors, it reloads."""

import io

import numpy as np
import pytest
import torch
from aeon.transformations.collection.convolution_based import MiniRocket as aeon_minirocket

from deepself.errors import DeepselfError
from deepself.models import create_model
from deepself.models.rocket import KERNELS, fit_dilations


@pytest.mark.parametrize("n_chans,n_times,n_kernels", [(1, 300, 10_000), (3, 120, 840), (11, 64, 500), (2, 9, 84)])
def test_torch_transform_equals_aeons(signals, n_chans, n_times, n_kernels):
    """Tolerance: none needed here (the same float32 operations in the same order); allowed are a
    1e-4 share of features that differ, each by at most 2 / n_times (a convolution value on the
    other side of its bias, should another CPU round one differently)."""
    x = signals(12, n_chans, n_times)
    model = create_model("minirocket", n_chans=n_chans, n_freqs=None, n_times=n_times, n_outputs=3,
                         n_kernels=n_kernels)
    model.fit_features(x[:6], seed=7)
    reference = aeon_minirocket(n_kernels=n_kernels, random_state=7, n_jobs=1).fit(x[:6]).transform(x)
    ours = model.forward_features(torch.from_numpy(x)).numpy()
    assert ours.shape == reference.shape == (12, model.n_features)
    differ = ours != reference
    assert differ.mean() <= 1e-4
    assert np.abs(ours - reference).max() <= 2 / n_times
    assert 0 < ours.mean() < 1  # proportions, neither all 0 nor all 1


def test_feature_count_and_dilations_follow_aeon():
    model = create_model("minirocket", n_chans=1, n_freqs=None, n_times=4097, n_outputs=5)
    assert model.n_features == 9_996 == 84 * (10_000 // 84)
    assert model.kernels.shape == (84, 3) and len(KERNELS) == 84
    dilations, per_dilation = fit_dilations(4097, 119, 32)
    assert dilations[0] == 1 and dilations[-1] == 512 == (4097 - 1) // 8  # the kernel spans the signal
    assert per_dilation.sum() == 119 and (np.diff(dilations) > 0).all()


def test_biases_come_from_the_signals_it_is_fitted_on(signals):
    x = signals(8, 2, 100)
    a = create_model("minirocket", n_chans=2, n_freqs=None, n_times=100, n_outputs=2, n_kernels=168)
    b = create_model("minirocket", n_chans=2, n_freqs=None, n_times=100, n_outputs=2, n_kernels=168)
    a.fit_features(x, seed=0)
    b.fit_features(10 * x, seed=0)
    assert torch.allclose(10 * a.biases, b.biases, rtol=1e-5, atol=1e-4)  # quantiles scale with the signal
    assert not torch.equal(a.biases, torch.zeros_like(a.biases))
    sizes = a.combination_sizes
    assert ((sizes >= 1) & (sizes <= 2)).all()
    with pytest.raises(DeepselfError, match="fitted on signals of"):
        a.fit_features(x[:, :1], seed=0)


def test_fitted_state_is_tensors_that_rebuild_the_same_model(signals):
    x = signals(10, 3, 80)
    torch.manual_seed(0)
    model = create_model("minirocket", n_chans=3, n_freqs=None, n_times=80, n_outputs=4, n_kernels=252).eval()
    model.fit_features(x[:5], seed=1)
    buffer = io.BytesIO()
    torch.save(model.state_dict(), buffer)
    buffer.seek(0)
    state = torch.load(buffer, weights_only=True)  # no pickled objects: tensors only
    assert {"biases", "dilations", "n_features_per_dilation", "combination_channels", "combination_sizes",
            "kernels", "head.linear.weight", "head.linear.bias", "head.mean", "head.scale", "head.temperature",
            "head.sparse"} == set(state)
    rebuilt = create_model("minirocket", n_chans=3, n_freqs=None, n_times=80, n_outputs=4, n_kernels=252).eval()
    rebuilt.load_state_dict(state)
    signals = torch.from_numpy(x)
    assert torch.equal(rebuilt.forward_features(signals), model.forward_features(signals))
    assert torch.equal(rebuilt(signals), model(signals))
    assert torch.equal(model(signals), model.get_classifier()(model.forward_head(model.forward_features(signals),
                                                                                  pre_logits=True)))


def test_too_short_signals_and_too_few_kernels_are_refused():
    with pytest.raises(DeepselfError, match="at least 9"):
        create_model("minirocket", n_chans=1, n_freqs=None, n_times=8, n_outputs=2)
    with pytest.raises(DeepselfError, match="n_kernels"):
        create_model("minirocket", n_chans=1, n_freqs=None, n_times=64, n_outputs=2, n_kernels=50)


def test_the_head_standardises_scores_and_tempers_and_old_checkpoints_still_load(signals):
    """``head(x) = linear((x - mean) / scale) / temperature``; a checkpoint of a one-layer head (before the
    scaler and temperature) loads as that layer with identity scaling and temperature 1."""
    model = create_model("minirocket", n_chans=1, n_freqs=None, n_times=60, n_outputs=3, n_kernels=84).eval()
    model.fit_features(signals(6, 1, 60), seed=0)
    with torch.no_grad():
        model.head.mean.uniform_(0, 1)
        model.head.scale.uniform_(0.5, 2)
        model.head.temperature.fill_(0.25)
    x = torch.from_numpy(signals(4, 1, 60, seed=1))
    features = model.forward_features(x)
    expected = model.head.linear((features - model.head.mean) / model.head.scale) * 4
    torch.testing.assert_close(model(x), expected)
    old = {k: v for k, v in model.state_dict().items() if not k.startswith("head.")}
    old.update({"head.weight": model.head.linear.weight.detach(), "head.bias": model.head.linear.bias.detach()})
    rebuilt = create_model("minirocket", n_chans=1, n_freqs=None, n_times=60, n_outputs=3, n_kernels=84).eval()
    rebuilt.load_state_dict(old)
    torch.testing.assert_close(rebuilt(x), model.head.linear(features))
    assert float(rebuilt.head.temperature) == 1.0
    with pytest.raises(DeepselfError, match="model args head"):
        create_model("minirocket", n_chans=1, n_freqs=None, n_times=60, n_outputs=3, head="svm")


def test_a_fitted_head_exports_to_onnx_with_the_probabilities_torch_gives(tmp_path):
    """The scaler, the ridge and the temperature are buffers of the graph: onnxruntime's softmax of the
    exported head equals torch's (the transform's own export is tests/test_export.py's, marked slow)."""
    onnxruntime = pytest.importorskip("onnxruntime")
    from deepself.training import probe, ridge
    from deepself.deploy.export import _export_onnx, exported
    from deepself.models.rocket import RocketHead

    rng = np.random.default_rng(0)
    y = np.arange(40) % 3
    x = torch.from_numpy((rng.normal(size=(40, 50)) * np.geomspace(0.01, 10, 50) + 0.5 * y[:, None]).astype(np.float32))
    head = RocketHead(50, 3)
    _, best, _ = ridge.fit_ridge(head, x, probe.Part.of_samples(np.arange(40), y), 3)
    assert best["temperature"] != 1.0 and float(head.scale.max() / head.scale.min()) > 10 and head.mean.abs().sum() > 0
    model = exported(head.eval(), {"mode": "none"})
    path = tmp_path / "head.onnx"
    _export_onnx(model, (50,), path, "head")
    session = onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    with torch.no_grad():
        expected = model(x).numpy()
    np.testing.assert_allclose(session.run(None, {"input": x.numpy()})[0], expected, atol=1e-5, rtol=0)
