"""Every registered model runs forward and backward on each input kind it declares."""

import pytest
import torch
from torch import nn

from deepself.errors import DeepselfError
from deepself.models import create_model, list_models, model_inputs, summary
from deepself.models.registry import register_model

# (n_chans, n_freqs, n_times) per input kind: large enough for every model's default pooling.
SHAPES = {"1d": (3, None, 64), "2d": (2, 32, 40)}
# Models whose input has a fixed part: YAMNet's patches are 96 frames.
SHAPES_OF = {("yamnet", "2d"): (2, 32, 100)}
CASES = [(arch, kind) for arch in list_models() for kind in model_inputs(arch)]


def _shape(arch, kind):
    return SHAPES_OF.get((arch, kind), SHAPES[kind])


def _input(arch, kind, batch=4, seed=0):
    n_chans, n_freqs, n_times = _shape(arch, kind)
    g = torch.Generator().manual_seed(seed)
    t = torch.arange(n_times) / n_times
    shape = (batch, n_chans, n_times) if n_freqs is None else (batch, n_chans, n_freqs, n_times)
    return torch.sin(2 * torch.pi * 5 * t) + 0.3 * torch.randn(shape, generator=g)


@pytest.mark.parametrize("arch,kind", CASES, ids=[f"{a}-{k}" for a, k in CASES])
def test_forward_backward_without_nan(arch, kind):
    torch.manual_seed(0)
    n_chans, n_freqs, n_times = _shape(arch, kind)
    model = create_model(arch, n_chans=n_chans, n_freqs=n_freqs, n_times=n_times, n_outputs=5)
    x = _input(arch, kind)
    out = model(x)
    assert out.shape == (4, 5)
    assert torch.isfinite(out).all()
    nn.functional.cross_entropy(out, torch.arange(4) % 5).backward()
    grads = [p.grad for p in model.parameters() if p.requires_grad]
    assert grads and all(g is not None and torch.isfinite(g).all() for g in grads)
    assert any(g.abs().sum() > 0 for g in grads)


@pytest.mark.parametrize("arch,kind", CASES, ids=[f"{a}-{k}" for a, k in CASES])
def test_summary_ends_with_the_class_scores(arch, kind):
    n_chans, n_freqs, n_times = _shape(arch, kind)
    model = create_model(arch, n_chans=n_chans, n_freqs=n_freqs, n_times=n_times, n_outputs=5)
    shape = (n_chans, n_times) if n_freqs is None else (n_chans, n_freqs, n_times)
    rows = summary(model, shape)
    assert rows[-1][1] == (5,)
    assert model.training  # summary puts the mode back


def test_cnn_summary_matches_the_sizes_computed_at_build_time():
    model = create_model("cnn2d", n_chans=1, n_freqs=20, n_times=30, n_outputs=3, channels=[4, 6], pool=[1, 2])
    rows = dict(summary(model, (1, 20, 30)))
    assert model.output_sizes == [(4, 20, 30), (6, 10, 15)]
    # block 1: conv, batch norm, ReLU (no pooling); block 2: conv, batch norm, ReLU, max-pooling
    assert rows["features.2 (ReLU)"] == model.output_sizes[0]
    assert rows["features.6 (MaxPool2d)"] == model.output_sizes[1]


def test_a_duplicate_name_raises():
    with pytest.raises(ValueError, match="registered twice"):
        register_model("fnn", inputs=("1d",))(lambda **kw: None)


def test_unknown_arch_key_and_input_kind_are_deepself_errors():
    with pytest.raises(DeepselfError, match="unknown"):
        create_model("cnn9", n_chans=1, n_freqs=8, n_times=8, n_outputs=2)
    with pytest.raises(DeepselfError, match=r"model args chanels: unknown key for arch cnn2d"):
        create_model("cnn2d", n_chans=1, n_freqs=8, n_times=8, n_outputs=2, chanels=[4])
    with pytest.raises(DeepselfError, match="takes 2d input, the feature is 1d"):
        create_model("panns", n_chans=1, n_freqs=None, n_times=8, n_outputs=2)


def test_name_is_a_hyperparameter_not_the_arch():
    model = create_model("torchvision", n_chans=1, n_freqs=32, n_times=32, n_outputs=2, name="mobilenet_v3_small")
    assert type(model.net).__name__ == "MobileNetV3"
