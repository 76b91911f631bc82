"""torchvision CNNs and ResNeXt WSL: weights through the real loading path, first-layer and head adaptation,
train modes. The files are state dicts of freshly built models, written the way the released files are."""

import urllib.error

import pytest
import torch
import torchvision
from torch import nn
from torchvision.models.resnet import Bottleneck, ResNet

from deepself.errors import DeepselfError
from deepself.models import create_model
from deepself.models.vision import TORCHVISION_NAMES, WSL_URLS

# One variant of each family; the slow test below takes every variant.
FAMILIES = ["alexnet", "googlenet", "vgg11_bn", "resnet18", "resnext50_32x4d", "mobilenet_v2", "mobilenet_v3_small",
            "wide_resnet50_2"]
# Too slow on two CPU cores for a backward pass in a test; their build and weights are still checked.
NO_BACKWARD = {"vgg16", "vgg16_bn", "vgg19", "vgg19_bn", "resnet152", "resnext101_32x8d", "resnext101_64x4d",
               "wide_resnet101_2", "resnext101_32x16d", "resnext101_32x32d", "resnext101_32x48d"}


def _reference(name):
    """A model as torchvision's released file describes it (3 channels, 1000 classes, GoogLeNet's aux heads)."""
    torch.manual_seed(0)
    if name in WSL_URLS:
        width = int(name.rsplit("x", 1)[1].rstrip("d"))
        return ResNet(Bottleneck, [3, 4, 23, 3], groups=32, width_per_group=width)
    extra = {"aux_logits": True, "init_weights": True} if name == "googlenet" else {}
    return torchvision.models.get_model(name, weights=None, **extra)


def _first_conv(net):
    return next(n for n, m in net.named_modules() if isinstance(m, nn.Conv2d))


def _head(net):
    return [n for n, m in net.named_modules() if isinstance(m, nn.Linear)][-1]


def _check_loaded(name, weights, arch="torchvision", size=64, backward=True, n_chans=1):
    reference = _reference(name)
    ref = reference.state_dict()
    if isinstance(weights, str) and weights.endswith(".pth"):
        torch.save(ref, weights)
    model = create_model(arch, n_chans=n_chans, n_freqs=size, n_times=size, n_outputs=4, name=name, weights=weights)
    conv, head = _first_conv(model.net), _head(model.net)
    own = model.net.state_dict()
    assert own[f"{conv}.weight"].shape[1] == n_chans
    assert torch.allclose(own[f"{conv}.weight"], ref[f"{conv}.weight"].sum(1, keepdim=True).repeat(1, n_chans, 1, 1)
                          / n_chans, atol=1e-6)
    assert model.get_classifier().out_features == 4 and model.get_classifier().in_features == reference.get_submodule(head).in_features
    for key, value in own.items():
        if not key.startswith((f"{conv}.", f"{head}.")):
            assert torch.equal(value, ref[key]), key
    x = torch.randn(2, n_chans, size, size)
    if backward:
        out = model(x)
        out.sum().backward()
        assert torch.isfinite(model.get_classifier().weight.grad).all()
    else:
        with torch.no_grad():
            out = model.eval()(x)
    assert out.shape == (2, 4) and torch.isfinite(out).all()
    return model


@pytest.mark.parametrize("name", FAMILIES)
def test_weights_file_loads_and_the_first_layer_and_head_adapt(name, tmp_path):
    _check_loaded(name, str(tmp_path / f"{name}.pth"))


@pytest.mark.slow
@pytest.mark.parametrize("name", [n for n in TORCHVISION_NAMES if n not in FAMILIES])
def test_every_torchvision_variant(name, tmp_path):
    _check_loaded(name, str(tmp_path / f"{name}.pth"), backward=name not in NO_BACKWARD)


def _cache(monkeypatch, tmp_path, url):
    """Point torch's hub cache at tmp_path; the path where a download of ``url`` would be stored."""
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path))
    (tmp_path / "checkpoints").mkdir(exist_ok=True)
    return str(tmp_path / "checkpoints" / url.rsplit("/", 1)[1])


def test_default_takes_torchvisions_download_from_the_hub_cache(monkeypatch, tmp_path):
    url = torchvision.models.get_model_weights("resnet18").DEFAULT.url
    cached = _cache(monkeypatch, tmp_path, url)
    torch.save(_reference("resnet18").state_dict(), cached)
    _check_loaded("resnet18", "DEFAULT")


def test_googlenet_weights_by_enum_name_drop_the_aux_heads_and_transform_rgb(monkeypatch, tmp_path):
    url = torchvision.models.get_model_weights("googlenet")["IMAGENET1K_V1"].url
    torch.save(_reference("googlenet").state_dict(), _cache(monkeypatch, tmp_path, url))
    model = create_model("torchvision", n_chans=3, n_freqs=32, n_times=32, n_outputs=2, name="googlenet",
                         weights="IMAGENET1K_V1")
    assert model.net.transform_input and model.net.aux1 is None
    grey = create_model("torchvision", n_chans=1, n_freqs=32, n_times=32, n_outputs=2, name="googlenet",
                        weights="IMAGENET1K_V1")
    assert not grey.net.transform_input


def test_resnext_wsl_weights_by_download_and_by_path(monkeypatch, tmp_path):
    cached = _cache(monkeypatch, tmp_path, WSL_URLS["resnext101_32x8d"])
    model = _check_loaded("resnext101_32x8d", cached, arch="resnext_wsl", size=32, n_chans=2)
    assert model.net.layer1[0].conv2.groups == 32 and model.net.layer1[0].conv2.in_channels == 256
    by_download = create_model("resnext_wsl", n_chans=2, n_freqs=32, n_times=32, n_outputs=4, weights="DEFAULT")
    assert torch.equal(by_download.net.layer4[2].conv3.weight, model.net.layer4[2].conv3.weight)


@pytest.mark.slow
@pytest.mark.parametrize("name", ["resnext101_32x16d", "resnext101_32x32d", "resnext101_32x48d"])
def test_every_resnext_wsl_variant(name, tmp_path):
    _check_loaded(name, str(tmp_path / f"{name}.pth"), arch="resnext_wsl", size=32, backward=False)


def test_without_internet_the_error_names_the_model_url_and_cache(monkeypatch, tmp_path):
    def offline(*args, **kwargs):
        raise urllib.error.URLError("Name or service not known")

    monkeypatch.setattr(torch.hub, "load_state_dict_from_url", offline)
    monkeypatch.setattr(torch.hub, "_hub_dir", str(tmp_path))
    with pytest.raises(DeepselfError, match=r"torchvision mobilenet_v2 from https://download.pytorch.org/models/"
                                            r"mobilenet_v2-.*set weights: to its path, or put it at .*checkpoints"):
        create_model("torchvision", n_chans=1, n_freqs=32, n_times=32, n_outputs=2, name="mobilenet_v2",
                     weights="DEFAULT")
    with pytest.raises(DeepselfError, match="ig_resnext101_32x16-c6f796b0.pth"):
        create_model("resnext_wsl", n_chans=1, n_freqs=32, n_times=32, n_outputs=2, name="resnext101_32x16d",
                     weights="DEFAULT")


def test_a_missing_or_unfitting_file_is_a_clear_error(tmp_path):
    with pytest.raises(DeepselfError, match=r"torchvision resnet34 needs the weights file .*nope.pth, which does not "
                                            r"exist; .*resnet34-.*\.pth"):
        create_model("torchvision", n_chans=1, n_freqs=32, n_times=32, n_outputs=2, name="resnet34",
                     weights=str(tmp_path / "nope.pth"))
    torch.save(_reference("resnet18").state_dict(), tmp_path / "resnet18.pth")
    with pytest.raises(DeepselfError, match="does not fit torchvision resnet34: .*keys missing"):
        create_model("torchvision", n_chans=1, n_freqs=32, n_times=32, n_outputs=2, name="resnet34",
                     weights=str(tmp_path / "resnet18.pth"))
    (tmp_path / "junk.pth").write_bytes(b"not a checkpoint")
    with pytest.raises(DeepselfError, match="junk.pth is not a readable weights file"):
        create_model("torchvision", n_chans=1, n_freqs=32, n_times=32, n_outputs=2, weights=str(tmp_path / "junk.pth"))


def test_keep_head_keeps_the_imagenet_outputs(tmp_path):
    reference = _reference("mobilenet_v3_small")
    torch.save(reference.state_dict(), tmp_path / "m.pth")
    model = create_model("torchvision", n_chans=3, n_freqs=64, n_times=64, n_outputs=1000, name="mobilenet_v3_small",
                         weights=str(tmp_path / "m.pth"), keep_head=True).eval()
    x = torch.randn(1, 3, 64, 64)
    with torch.no_grad():
        assert torch.allclose(model(x), reference.eval()(x), atol=1e-5)
    backbone_only = {k: v for k, v in reference.state_dict().items() if not k.startswith("classifier.3")}
    torch.save(backbone_only, tmp_path / "features.pth")
    with pytest.raises(DeepselfError, match=r"keep_head: .*features.pth holds no pretrained head \(classifier.3\)"):
        create_model("torchvision", n_chans=3, n_freqs=64, n_times=64, n_outputs=1000, name="mobilenet_v3_small",
                     weights=str(tmp_path / "features.pth"), keep_head=True)


def test_summed_first_layer_sees_repeated_channels_as_one(tmp_path):
    torch.save(_reference("resnet18").state_dict(), tmp_path / "r.pth")
    one = create_model("torchvision", n_chans=1, n_freqs=32, n_times=32, n_outputs=2, weights=str(tmp_path / "r.pth"))
    five = create_model("torchvision", n_chans=5, n_freqs=32, n_times=32, n_outputs=2, weights=str(tmp_path / "r.pth"))
    five.net.fc.load_state_dict(one.net.fc.state_dict())
    x = torch.randn(2, 1, 32, 32)
    with torch.no_grad():
        assert torch.allclose(one.eval()(x), five.eval()(x.repeat(1, 5, 1, 1)), atol=1e-4)


def test_repeat_adapter_and_resize_change_the_input_not_the_network():
    model = create_model("torchvision", n_chans=1, n_freqs=20, n_times=30, n_outputs=2, in_adapt="repeat",
                         resize=[40, 50]).eval()
    assert model.net.conv1.in_channels == 3
    seen = []
    model.net.conv1.register_forward_hook(lambda m, i, o: seen.append(i[0]))
    x = torch.randn(2, 1, 20, 30)
    model(x)
    assert seen[0].shape == (2, 3, 40, 50)
    assert torch.equal(seen[0][:, 0], seen[0][:, 2])
    mean = create_model("torchvision", n_chans=4, n_freqs=20, n_times=30, n_outputs=2, in_adapt="repeat").eval()
    mean.net.conv1.register_forward_hook(lambda m, i, o: seen.append(i[0]))
    x = torch.randn(2, 4, 20, 30)
    mean(x)
    assert torch.allclose(seen[1][:, 1], x.mean(1))


def test_too_small_input_asks_for_resize():
    with pytest.raises(DeepselfError, match="alexnet needs inputs of at least 63 x 63, the input is 48 x 48"):
        create_model("torchvision", n_chans=1, n_freqs=48, n_times=48, n_outputs=2, name="alexnet")
    model = create_model("torchvision", n_chans=1, n_freqs=48, n_times=48, n_outputs=2, name="alexnet",
                         resize=[64, 64])
    assert model(torch.randn(2, 1, 48, 48)).shape == (2, 2)


def test_train_modes_give_the_trainer_its_parameter_groups():
    n_all = len(list(create_model("torchvision", n_chans=1, n_freqs=32, n_times=32, n_outputs=3).parameters()))
    fine = create_model("torchvision", n_chans=1, n_freqs=32, n_times=32, n_outputs=3)
    [group] = fine.parameter_groups(0.01)
    assert group["lr"] == 0.01 and len(group["params"]) == n_all

    lower = create_model("torchvision", n_chans=1, n_freqs=32, n_times=32, n_outputs=3, train_mode="lower_lr",
                         backbone_lr_scale=0.2)
    backbone, head = lower.parameter_groups(0.01)
    assert backbone["lr"] == pytest.approx(0.002) and head["lr"] == 0.01
    assert {id(p) for p in head["params"]} == {id(lower.net.fc.weight), id(lower.net.fc.bias)}
    assert len(backbone["params"]) + len(head["params"]) == n_all
    torch.optim.Adam(lower.parameter_groups(0.01))

    frozen = create_model("torchvision", n_chans=1, n_freqs=32, n_times=32, n_outputs=3, train_mode="freeze")
    [group] = frozen.parameter_groups(0.01)
    assert len(group["params"]) == 2
    assert not any(p.requires_grad for p in frozen.net.layer1.parameters())
    frozen.train()
    assert frozen.training and not frozen.net.bn1.training
    before = frozen.net.bn1.running_mean.clone()
    conv_before = frozen.net.conv1.weight.clone()
    optimizer = torch.optim.SGD(frozen.parameter_groups(0.1))
    frozen(torch.randn(4, 1, 32, 32)).sum().backward()
    optimizer.step()
    assert torch.equal(frozen.net.bn1.running_mean, before)
    assert torch.equal(frozen.net.conv1.weight, conv_before)
    assert frozen.net.fc.weight.grad is not None


@pytest.mark.parametrize("name", ["resnet18", "mobilenet_v2", "mobilenet_v3_small", "alexnet", "vgg11", "googlenet",
                                  "resnext50_32x4d"])
def test_declared_parts_compute_torchvisions_own_forward(name):
    torch.manual_seed(0)
    model = create_model("torchvision", n_chans=3, n_freqs=64, n_times=64, n_outputs=3, name=name,
                         train_mode="probe").eval()
    x = torch.randn(2, 3, 64, 64)
    with torch.no_grad():
        embedding = model.forward_features(x)
        pre_logits = model.forward_head(embedding, pre_logits=True)
        torch.testing.assert_close(model(x), model.net(x))  # torchvision's forward, untouched
        torch.testing.assert_close(model.get_classifier()(pre_logits), model(x))
    assert embedding.ndim == 2 and embedding.shape[0] == 2
    assert model.get_classifier().out_features == 3
    trained = {id(p) for g in model.parameter_groups(0.1) for p in g["params"]}
    assert {id(p) for p in model.get_classifier().parameters()} <= trained
    assert all(not p.requires_grad for p in model.backbone_parameters())


def test_the_declared_first_convolution_is_adapted():
    model = create_model("torchvision", n_chans=2, n_freqs=64, n_times=64, n_outputs=3, name="googlenet")
    assert model.net.conv1.conv.in_channels == 2
    model = create_model("torchvision", n_chans=5, n_freqs=64, n_times=64, n_outputs=3, name="mobilenet_v2")
    assert model.net.features[0][0].in_channels == 5
