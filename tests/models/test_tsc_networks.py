"""InceptionTime (``inception``) and LITE (``lite``): shapes, the reference code's layers and sizes,
LITE's fixed filters, ONNX parity and a few training steps."""

import numpy as np
import onnxruntime
import pytest
import torch
import torch.nn.functional as F

from deepself.errors import DeepselfError
from deepself.deploy.export import _export_onnx, exported
from deepself.models import create_model
from deepself.models.inception import conv_same
from deepself.models.lite import aligned_bank, custom_filters

ARCHS = ("inception", "lite")
WIDTH = {"inception": 128, "lite": 32}  # the embedding: 4 x n_filters, n_filters


def _model(arch, n_chans=1, n_times=64, n_outputs=3, **args):
    torch.manual_seed(0)
    return create_model(arch, n_chans=n_chans, n_freqs=None, n_times=n_times, n_outputs=n_outputs, **args)


def _trainable(model, skip_head=False):
    return sum(p.numel() for name, p in model.named_parameters()
               if p.requires_grad and not (skip_head and name.startswith("fc.")))


@pytest.mark.parametrize("arch", ARCHS)
@pytest.mark.parametrize("n_chans", [1, 3])
@pytest.mark.parametrize("n_times", [64, 77, 5])
def test_shapes_on_single_and_multichannel_odd_and_even_lengths(arch, n_chans, n_times):
    model = _model(arch, n_chans, n_times).eval()
    x = torch.randn(2, n_chans, n_times)
    with torch.no_grad():
        assert model(x).shape == (2, 3)
        assert model.forward_features(x).shape == (2, WIDTH[arch])
        assert torch.equal(model.forward_head(model.forward_features(x)), model(x))
        inner = model.blocks[0](x) if arch == "inception" else model.separable(model.stem(x))
    assert inner.shape[-1] == n_times  # 'same' padding keeps every layer's length
    assert model.get_classifier() is model.fc


@pytest.mark.filterwarnings("ignore:Using padding='same' with even kernel lengths")
@pytest.mark.parametrize("kernel, dilation, groups", [(40, 1, 1), (20, 1, 1), (41, 1, 1), (20, 2, 4), (10, 4, 4),
                                                      (7, 3, 2), (96, 1, 1)])
@pytest.mark.parametrize("n_times", [5, 64, 77])
def test_same_padding_is_tensorflows(kernel, dilation, groups, n_times):
    """TensorFlow pads (total // 2) on the left and the rest on the right, as torch's padding='same' does."""
    g = torch.Generator().manual_seed(0)
    x, w = torch.randn(2, 4, n_times, generator=g), torch.randn(8, 4 // groups, kernel, generator=g)
    total = dilation * (kernel - 1)
    by_hand = F.conv1d(F.pad(x, (total // 2, total - total // 2)), w, dilation=dilation, groups=groups)
    ours = conv_same(x, w, dilation, groups)
    torch.testing.assert_close(ours, by_hand, atol=1e-4, rtol=1e-5)
    torch.testing.assert_close(ours, F.conv1d(x, w, padding="same", dilation=dilation, groups=groups),
                               atol=1e-4, rtol=1e-5)


def _reference_filters(channels=1):
    """LITE's ``hybird_layer`` filters, transcribed from the authors' code (classifiers/lite.py)."""
    out, kernel_sizes = [], [2, 4, 8, 16, 32, 64]
    for sign in (0, 1):
        for k in kernel_sizes:
            f = np.ones((k, channels, 1))
            f[(np.arange(k) % 2 == 0) if sign == 0 else (np.arange(k) % 2 > 0)] *= -1
            out.append(f)
    for k in kernel_sizes[1:]:
        f = np.zeros((k + k // 2, channels, 1))
        xmash = np.linspace(start=0, stop=1, num=k // 4 + 1)[1:].reshape((-1, 1, 1))
        left = xmash ** 2
        right = left[::-1]
        f[0 : k // 4] = -left
        f[k // 4 : k // 2] = -right
        f[k // 2 : 3 * k // 4] = 2 * left
        f[3 * k // 4 : k] = 2 * right
        f[k : 5 * k // 4] = -left
        f[5 * k // 4 :] = -right
        out.append(f)
    return [f[:, 0, 0] for f in out]


def test_custom_filters_are_the_reference_codes():
    ours, reference = custom_filters(), _reference_filters()
    assert [len(f) for f in ours] == [2, 4, 8, 16, 32, 64] * 2 + [6, 12, 24, 48, 96]
    for a, b in zip(ours, reference, strict=True):
        np.testing.assert_array_equal(a, b)


@pytest.mark.parametrize("n_chans, n_times", [(1, 64), (3, 77), (2, 10)])
def test_the_aligned_bank_is_each_filter_under_its_own_same_padding(n_chans, n_times):
    """One convolution of the 96-tap bank gives what each filter alone gives (summed over channels)."""
    x = torch.randn(2, n_chans, n_times, generator=torch.Generator().manual_seed(1))
    bank = conv_same(x, aligned_bank(custom_filters(), n_chans))
    for i, f in enumerate(custom_filters()):
        w = torch.tensor(f, dtype=torch.float32).expand(1, n_chans, -1)
        torch.testing.assert_close(bank[:, i : i + 1], F.conv1d(x, w, padding="same"), atol=1e-5, rtol=1e-5)


def test_parameter_counts_are_the_papers():
    """Univariate, without the output layer: LITE's 9,814 trainable parameters (Ismail-Fawaz et al.,
    2023: 2.34% of InceptionTime's), InceptionTime's 420,192."""
    inception, lite = _model("inception", n_times=427, n_outputs=6), _model("lite", n_times=427, n_outputs=6)
    assert _trainable(lite, skip_head=True) == 9_814
    assert _trainable(inception, skip_head=True) == 420_192
    for n_chans in (1, 3):
        ratio = _trainable(_model("lite", n_chans)) / _trainable(_model("inception", n_chans))
        assert 0.02 < ratio < 0.10, (n_chans, ratio)


def test_custom_filters_are_fixed():
    model = _model("lite", n_chans=2)
    bank = model.stem.custom
    assert bank.shape == (17, 2, 96) and not bank.requires_grad
    assert all(p is not bank for p in model.parameters())
    assert not any("custom" in name for name in model.state_dict())  # rebuilt, not stored
    before = bank.clone()
    optimiser = torch.optim.Adam(model.parameters(), lr=0.1)
    for _ in range(2):
        optimiser.zero_grad()
        F.cross_entropy(model(torch.randn(4, 2, 64)), torch.tensor([0, 1, 2, 0])).backward()
        optimiser.step()
    assert bank.grad is None and torch.equal(model.stem.custom, before)


def test_options_change_the_layers():
    lite = _model("lite", use_custom_filters=False, use_multiplexing=False, use_dilation=False)
    assert lite.stem.custom is None and [c.kernel_size for c in lite.stem.convs] == [(40,)]
    assert lite.stem.convs[0].out_channels == 96 and lite.stem.out_channels == 96
    assert [s[0].dilation for s in lite.separable] == [(1,), (1,)]
    default = _model("lite")
    assert [c.kernel_size[0] for c in default.stem.convs] == [40, 20, 10] and default.stem.out_channels == 113
    assert [(s[0].kernel_size, s[0].dilation) for s in default.separable] == [((20,), (2,)), ((10,), (4,))]
    plain = _model("inception", n_chans=3, depth=4, bottleneck=0, residual=False)
    assert len(plain.blocks) == 4 and len(plain.shortcuts) == 0
    assert all(isinstance(b.bottleneck, torch.nn.Identity) for b in plain.blocks)
    deep = _model("inception", n_chans=3, depth=4)
    assert len(deep.shortcuts) == 1 and deep.blocks[0].bottleneck.out_channels == 32
    assert isinstance(_model("inception").blocks[0].bottleneck, torch.nn.Identity)  # one channel: none
    with pytest.raises(DeepselfError, match="kernel_size"):
        _model("lite", kernel_size=3)
    with pytest.raises(DeepselfError, match="kernel_size"):
        _model("inception", kernel_size=2)


@pytest.mark.parametrize("arch", ARCHS)
def test_onnx_export_gives_pytorchs_probabilities(arch, tmp_path):
    """deepself's own exporter (torch.export, dynamic batch), then onnxruntime."""
    model = _model(arch, n_chans=2, n_times=77).eval()
    with torch.no_grad():  # non-trivial batch-norm statistics
        for block in model.modules():
            if isinstance(block, torch.nn.BatchNorm1d):
                block.running_mean.uniform_(-0.5, 0.5)
                block.running_var.uniform_(0.5, 2.0)
    wrapped = exported(model, {"mode": "none"})
    _export_onnx(wrapped, (2, 77), tmp_path / "model.onnx", arch)
    session = onnxruntime.InferenceSession(str(tmp_path / "model.onnx"), providers=["CPUExecutionProvider"])
    x = np.random.default_rng(0).normal(size=(5, 2, 77)).astype(np.float32)
    with torch.no_grad():
        expected = wrapped(torch.from_numpy(x)).numpy()
    for batch in (x, x[:1]):
        got = session.run(None, {"input": batch})[0]
        np.testing.assert_allclose(got, expected[: len(batch)], atol=1e-5, rtol=0)


@pytest.mark.parametrize("arch", ARCHS)
def test_a_few_steps_reduce_the_loss(arch):
    rng = np.random.default_rng(0)
    y = np.arange(16) % 2
    t = np.arange(64) / 64
    x = np.sin(2 * np.pi * np.where(y, 3.0, 9.0)[:, None] * t)[:, None, :] + 0.3 * rng.standard_normal((16, 1, 64))
    x, y = torch.tensor(x, dtype=torch.float32), torch.tensor(y)
    model = _model(arch, n_outputs=2)
    optimiser = torch.optim.Adam(model.parameters(), lr=1e-2)
    losses = []
    for _ in range(8):
        optimiser.zero_grad()
        loss = F.cross_entropy(model(x), y)
        loss.backward()
        optimiser.step()
        losses.append(loss.item())
    assert np.mean(losses[-2:]) < 0.5 * losses[0], losses
