"""Every family offers timm's interface and declares what it can do (deepself.models.base.Model)."""

import pytest
import torch

from deepself.models import create_model, list_models, model_inputs, registry
from deepself.models.base import Model

CASES = [(arch, kind) for arch in list_models() for kind in model_inputs(arch)]
SHAPES = {"1d": (3, None, 64), "2d": (2, 32, 40)}
ROCKETS = {"minirocket", "multirocket", "hydra", "multirocket_hydra"}


def _model_and_input(arch, kind):
    n_chans, n_freqs, n_times = (2, 32, 100) if arch == "yamnet" else SHAPES[kind]
    torch.manual_seed(0)
    model = create_model(arch, n_chans=n_chans, n_freqs=n_freqs, n_times=n_times, n_outputs=5).eval()
    shape = (3, n_chans, n_times) if n_freqs is None else (3, n_chans, n_freqs, n_times)
    return model, torch.randn(shape, generator=torch.Generator().manual_seed(1))


@pytest.mark.parametrize("arch,kind", CASES, ids=[f"{a}-{k}" for a, k in CASES])
def test_forward_is_the_head_on_the_features(arch, kind):
    model, x = _model_and_input(arch, kind)
    assert isinstance(model, Model)
    with torch.no_grad():
        out = model(x)
        features = model.forward_features(x)
        pre_logits = model.forward_head(features, pre_logits=True)
        assert features.ndim == 2 and len(features) == 3
        torch.testing.assert_close(model.forward_head(features), out)
        torch.testing.assert_close(model.get_classifier()(pre_logits), out)
    assert out.shape == (3, 5)


@pytest.mark.parametrize("arch", list_models())
def test_capabilities_are_declared(arch):
    model, _ = _model_and_input(arch, model_inputs(arch)[0])
    assert model.fits_a_head == (arch in ROCKETS) == registry.fits_a_head(arch, {})
    assert model.fitted_transform == (arch in ROCKETS)
    groups = model.parameter_groups(0.01)
    assert {id(p) for g in groups for p in g["params"]} == {id(p) for p in model.parameters() if p.requires_grad}


def test_a_probe_declares_it_and_trains_its_head_only():
    model = create_model("torchvision", n_chans=1, n_freqs=32, n_times=32, n_outputs=3, name="resnet18",
                         train_mode="probe")
    assert model.fits_a_head and not model.fitted_transform
    assert registry.fits_a_head("torchvision", {"train_mode": "probe"})
    assert [p for g in model.parameter_groups(0.1) for p in g["params"]] == list(model.get_classifier().parameters())


def test_a_pretrained_googlenet_on_rgb_says_it_cannot_be_rebuilt_without_its_weights():
    from deepself.errors import DeepselfError

    args = {"n_chans": 3, "n_freqs": 32, "n_times": 32, "n_outputs": 2, "name": "googlenet", "weights": "DEFAULT"}
    with pytest.raises(DeepselfError, match="googlenet trained from pretrained weights cannot be rebuilt"):
        registry.rebuild_args("torchvision", args)
    assert registry.rebuild_args("torchvision", {**args, "n_chans": 1})["weights"] is None
    assert registry.rebuild_args("cnn2d", {"n_chans": 1}) == {"n_chans": 1}
