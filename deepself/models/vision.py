"""ImageNet CNNs from torchvision, and ResNeXt-101 WSL (Mahajan et al. 2018), on maps and images.

``torchvision`` builds any of :data:`TORCHVISION_NAMES` with ``torchvision.models.get_model``;
``weights: DEFAULT`` (or another name of the model's weights enum, e.g. ``IMAGENET1K_V1``) takes
torchvision's download into its cache (``$TORCH_HOME/hub/checkpoints``), ``weights: <path>`` a
local file, for clusters without internet. ``resnext_wsl`` is torchvision's ResNet with
groups=32 and width_per_group 8/16/32/48, with the weights of the WSL-Images release
(facebookresearch/WSL-Images ``hubconf.py``: weakly supervised on 940M Instagram images, then
fine-tuned on ImageNet).

Both files take the same loading code. Each torchvision family declares its parts
(:data:`FAMILIES`): the first convolution, the modules that compute the embedding, in the order
torchvision's ``forward`` runs them, and the head. After loading, the declared first convolution
is adapted to the input's channels (or the input repeated to RGB), and the head's last linear
layer (the ImageNet classifier) is replaced by one for the task's classes unless ``keep_head``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from pathlib import Path
from typing import Annotated, Literal
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
from torch import nn

from deepself.errors import DeepselfError
from deepself.models._torchvision import import_torchvision
from deepself.models.backbone import (PretrainedNet, TrainMode, adapt_conv, load_weights, no_weights, read_state_dict,
                                      set_submodule)
from deepself.models.registry import Length, Positive, Range, register_model, share_docs

log = logging.getLogger(__name__)

TORCHVISION_NAMES = (
    "alexnet", "googlenet",
    "vgg11", "vgg11_bn", "vgg13", "vgg13_bn", "vgg16", "vgg16_bn", "vgg19", "vgg19_bn",
    "resnet18", "resnet34", "resnet50", "resnet101", "resnet152",
    "resnext50_32x4d", "resnext101_32x8d", "resnext101_64x4d",
    "mobilenet_v2", "mobilenet_v3_small", "mobilenet_v3_large",
    "wide_resnet50_2", "wide_resnet101_2",
)
# The WSL-Images release: width per group -> weights file.
WSL_URLS = {
    "resnext101_32x8d": "https://download.pytorch.org/models/ig_resnext101_32x8-c38310e5.pth",
    "resnext101_32x16d": "https://download.pytorch.org/models/ig_resnext101_32x16-c6f796b0.pth",
    "resnext101_32x32d": "https://download.pytorch.org/models/ig_resnext101_32x32-e4b90b00.pth",
    "resnext101_32x48d": "https://download.pytorch.org/models/ig_resnext101_32x48-3e41cc8a.pth",
}
WSL_NAMES = tuple(WSL_URLS)
IN_ADAPT = ("sum", "repeat")

share_docs("""
vision_in_adapt: in_adapt
    Input channels C != 3: sum (the first convolution takes C channels, its RGB filters summed and shared
    evenly among them) or repeat (the input repeated to 3 channels; its channel mean when C is not 1).
resize
    Resize every input to [height, width] (bilinear) before the network, e.g. [224, 224]; null = keep.
""")
_RESNET = ("conv1", ("conv1", "bn1", "relu", "maxpool", "layer1", "layer2", "layer3", "layer4", "avgpool"), ("fc",))
# Per family (the name's prefix): the first convolution; the modules from the input to the pooled
# map, in the order of torchvision's forward ("global_avg_pool": mobilenet_v2 pools in its forward,
# with no module); the head, whose last layer is the classifier (a Sequential counts as its
# layers). forward_features flattens the pooled map; forward_head runs the head.
FAMILIES = {
    "alexnet": ("features.0", ("features", "avgpool"), ("classifier",)),
    "googlenet": ("conv1.conv", ("conv1", "maxpool1", "conv2", "conv3", "maxpool2", "inception3a", "inception3b",
                                 "maxpool3", "inception4a", "inception4b", "inception4c", "inception4d",
                                 "inception4e", "maxpool4", "inception5a", "inception5b", "avgpool"),
                  ("dropout", "fc")),
    "vgg": ("features.0", ("features", "avgpool"), ("classifier",)),
    "resnet": _RESNET,
    "resnext": _RESNET,
    "wide_resnet": _RESNET,
    "mobilenet_v2": ("features.0.0", ("features", "global_avg_pool"), ("classifier",)),
    "mobilenet_v3": ("features.0.0", ("features", "avgpool"), ("classifier",)),
}


def family(name: str) -> tuple[str, tuple[str, ...], tuple[str, ...]]:
    """(first convolution, embedding modules, head modules) of a torchvision name (:data:`FAMILIES`)."""
    return next(parts for prefix, parts in FAMILIES.items() if name.startswith(prefix))
# Smallest input side (after resize) each family's pooling survives, measured on torchvision 0.29.
_MIN_SIZE = {"alexnet": 63, "googlenet": 15, "vgg": 32}


def _min_size(name: str) -> int:
    return next((size for prefix, size in _MIN_SIZE.items() if name.startswith(prefix)), 1)


def transforms_input(name: str, n_chans: int, in_adapt: str, pretrained: bool) -> bool:
    """Whether the network re-normalises its RGB input itself: torchvision's GoogLeNet built with its
    released weights (``transform_input``) maps ImageNet's mean and std to its own [-1, 1] scaling."""
    return name == "googlenet" and pretrained and (n_chans == 3 or in_adapt == "repeat")


def _rebuild_args(args: dict) -> dict:
    """A trained torchvision model's args for rebuilding it without its weights file; refused where the
    network's input transform came with its weights (a pretrained GoogLeNet on RGB input)."""
    if transforms_input(args.get("name", "resnet18"), args["n_chans"], args.get("in_adapt", "sum"),
                        not no_weights(args.get("weights"))):
        # built without its weights, the network would silently skip the transform it was trained with
        raise DeepselfError("a googlenet trained from pretrained weights cannot be rebuilt without them; "
                            "predicting with it is not supported")
    return args


def download(url: str, model: str, check_hash: bool = True) -> tuple[dict, str]:
    """The state dict at ``url`` through torch's hub cache, downloading it when it is not cached yet."""
    cached = Path(torch.hub.get_dir()) / "checkpoints" / Path(urlparse(url).path).name
    try:
        state = torch.hub.load_state_dict_from_url(url, map_location="cpu", progress=True, check_hash=check_hash,
                                                   weights_only=True)
    except Exception as err:  # no network, a proxy, a hash mismatch: all end the same way for the user
        raise DeepselfError(
            f"model args weights: cannot get the weights of {model} from {url} ({type(err).__name__}: {err}); "
            f"without internet, download that file elsewhere and set weights: to its path, or put it at {cached}"
        ) from None
    return state, str(cached)


class VisionNet(PretrainedNet):
    """An ImageNet CNN (``net``, of the family :func:`family` names) with its input, first convolution and head
    adapted to the task."""

    def __init__(self, label, net, n_chans, n_freqs, n_times, n_outputs, *, state, source, in_adapt, resize,
                 keep_head, train_mode, backbone_lr_scale, ignore=()):
        super().__init__()
        if in_adapt not in IN_ADAPT:
            raise DeepselfError(f"model args in_adapt: {in_adapt!r} is not one of {list(IN_ADAPT)}")
        if resize is not None and (len(resize) != 2 or min(resize) < 1):
            raise DeepselfError(f"model args resize: {resize!r} is not [height, width]")
        self.net, self.in_adapt = net, in_adapt
        self.resize = None if resize is None else (int(resize[0]), int(resize[1]))
        size = self.resize or (n_freqs, n_times)
        name = label.split()[-1]
        if min(size) < _min_size(name):
            raise DeepselfError(f"model args resize: {label} needs inputs of at least {_min_size(name)} x "
                                f"{_min_size(name)}, the input is {size[0]} x {size[1]} (set resize)")
        first_conv, self.feature_names, head = family(name)
        self.head_names = tuple(f"net.{n}" for n in head)
        classifier = self._head_layers()[-1]
        classifier_name = next(n for n, m in net.named_modules() if m is classifier)
        if state is not None:
            if keep_head and f"{classifier_name}.weight" not in state:
                raise DeepselfError(f"model args keep_head: {source} holds no pretrained head ({classifier_name}) "
                                    f"for {label}; set keep_head: false")
            load_weights(net, state, source, label, ignore=ignore,
                         optional=() if keep_head else (f"{classifier_name}.",))
        if in_adapt == "sum":
            set_submodule(net, first_conv, adapt_conv(net.get_submodule(first_conv), n_chans))
        if keep_head:
            if n_outputs != classifier.out_features:
                log.warning("%s: keep_head gives %d outputs, the task has %d classes", label,
                            classifier.out_features, n_outputs)
        else:
            set_submodule(net, classifier_name, nn.Linear(classifier.in_features, n_outputs))
        self.set_train_mode(train_mode, backbone_lr_scale)

    def _head_layers(self) -> list[nn.Module]:
        layers = []
        for name in self.head_names:
            module = self.get_submodule(name)
            layers += list(module) if isinstance(module, nn.Sequential) else [module]
        return layers

    def forward_features(self, x):
        """The flattened pooled map of the backbone, (B, channels of its last block)."""
        if self.in_adapt == "repeat" and x.shape[1] != 3:
            x = (x if x.shape[1] == 1 else x.mean(1, keepdim=True)).expand(-1, 3, -1, -1)
        if self.resize is not None:
            x = F.interpolate(x, size=self.resize, mode="bilinear", align_corners=False)
        if getattr(self.net, "transform_input", False):  # googlenet with ported RGB weights
            x = self.net._transform_input(x)
        for name in self.feature_names:
            x = F.adaptive_avg_pool2d(x, 1) if name == "global_avg_pool" else self.net.get_submodule(name)(x)
        return torch.flatten(x, 1)

    def forward_head(self, x, pre_logits: bool = False):
        *body, classifier = self._head_layers()
        for layer in body:
            x = layer(x)
        return x if pre_logits else classifier(x)

    def get_classifier(self) -> nn.Linear:
        return self._head_layers()[-1]


def _torchvision_state(name: str, weights) -> tuple[dict | None, str]:
    """(state dict, where it came from) for ``weights``: None, a weights enum name, or a file path."""
    torchvision = import_torchvision()  # here: torchvision takes a second to import (without torch._dynamo)

    if no_weights(weights):
        return None, "random initialisation"
    enum = torchvision.models.get_model_weights(name)
    if weights in enum.__members__:
        return download(enum[weights].url, f"torchvision {name}")
    return read_state_dict(weights, f"torchvision {name}",
                           f"torchvision's {name} weights are at {enum.DEFAULT.url} (weights: DEFAULT downloads them)"
                           ), str(weights)


Resize = Annotated[Sequence[Positive], Length(2, 2)] | None


@register_model("torchvision", inputs=("2d",), rebuild=_rebuild_args)
def torchvision_model(n_chans, n_freqs, n_times, n_outputs, *, name: Literal[TORCHVISION_NAMES] = "resnet18",
                      weights: str | None = None, in_adapt: Literal[IN_ADAPT] = "sum", resize: Resize = None,
                      keep_head: bool = False, train_mode: TrainMode = "finetune",
                      backbone_lr_scale: Annotated[float, Range(0)] = 0.1):
    """An ImageNet CNN of torchvision on maps or images (B, C, F, T).

    Parameters
    ----------
    name
        The torchvision model (a torchvision.models.get_model name).
    %(weights)s
    %(vision_in_adapt)s
    %(resize)s
    %(keep_head)s
    %(train_mode)s
    %(backbone_lr_scale)s

    Notes
    -----
    ``weights``: a file is a state dict in torchvision's layout. ``train_mode: probe``: the
    backbone's embeddings are computed once, in eval mode, and a logistic regression on them
    becomes the classifier (:mod:`deepself.training.probe`).

    References
    ----------
    AlexNet (Krizhevsky, arXiv 2014), GoogLeNet (Szegedy et al., CVPR 2015), VGG (Simonyan & Zisserman,
    ICLR 2015), ResNet (He et al., CVPR 2016), ResNeXt (Xie et al., CVPR 2017), MobileNetV2 (Sandler et
    al., CVPR 2018), MobileNetV3 (Howard et al., ICCV 2019), Wide ResNet (Zagoruyko & Komodakis, BMVC 2016)
    """
    torchvision = import_torchvision()  # here: torchvision takes a second to import (without torch._dynamo)

    if name not in TORCHVISION_NAMES:
        raise DeepselfError(f"model args name: {name!r} is not one of {list(TORCHVISION_NAMES)}")
    state, source = _torchvision_state(name, weights)
    extra, ignore = {}, ()
    if name == "googlenet":
        # Released files carry the auxiliary classifiers, which training does not use here. The
        # ported weights expect transform_input, which works on RGB input only.
        extra = {"aux_logits": False, "init_weights": state is None,
                 "transform_input": transforms_input(name, n_chans, in_adapt, state is not None)}
        ignore = ("aux1.", "aux2.")
    net = torchvision.models.get_model(name, weights=None, **extra)
    return VisionNet(f"torchvision {name}", net, n_chans, n_freqs, n_times, n_outputs, state=state, source=source,
                     in_adapt=in_adapt, resize=resize, keep_head=keep_head, train_mode=train_mode,
                     backbone_lr_scale=backbone_lr_scale, ignore=ignore)


@register_model("resnext_wsl", inputs=("2d",))
def resnext_wsl(n_chans, n_freqs, n_times, n_outputs, *, name: Literal[WSL_NAMES] = "resnext101_32x8d",
                weights: str | None = None, in_adapt: Literal[IN_ADAPT] = "sum", resize: Resize = None,
                keep_head: bool = False, train_mode: TrainMode = "finetune",
                backbone_lr_scale: Annotated[float, Range(0)] = 0.1):
    """ResNeXt-101 32xNd pretrained on Instagram hashtags (Mahajan et al., ECCV 2018), N = 8, 16, 32, 48.

    ``weights: DEFAULT`` downloads the WSL-Images file (:data:`WSL_URLS`); a path loads a local
    copy. The other keys are those of :func:`torchvision_model`.

    Parameters
    ----------
    name
        ResNeXt-101 32xNd of the WSL-Images release (Mahajan et al. 2018), N = 8, 16, 32, 48.
    %(weights)s
    %(vision_in_adapt)s
    %(resize)s
    %(keep_head)s
    %(train_mode)s
    %(backbone_lr_scale)s

    References
    ----------
    Mahajan et al., ECCV 2018 (facebookresearch/WSL-Images)
    """
    if name not in WSL_URLS:
        raise DeepselfError(f"model args name: {name!r} is not one of {list(WSL_URLS)}")
    label = f"resnext_wsl {name}"
    if no_weights(weights):
        state, source = None, "random initialisation"
    elif weights == "DEFAULT":
        state, source = download(WSL_URLS[name], label)
    else:
        state, source = read_state_dict(weights, label, f"the file is {WSL_URLS[name]}"), str(weights)
    width = int(name.rsplit("x", 1)[1].rstrip("d"))
    import_torchvision()  # here, slow to import (without torch._dynamo, see deepself.models._torchvision)
    from torchvision.models.resnet import Bottleneck, ResNet

    net = ResNet(Bottleneck, [3, 4, 23, 3], groups=32, width_per_group=width)
    return VisionNet(label, net, n_chans, n_freqs, n_times, n_outputs, state=state, source=source, in_adapt=in_adapt,
                     resize=resize, keep_head=keep_head, train_mode=train_mode, backbone_lr_scale=backbone_lr_scale)
