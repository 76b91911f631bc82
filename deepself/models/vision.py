"""ImageNet CNNs from torchvision, and ResNeXt-101 WSL (Mahajan et al. 2018), on maps and images.

``torchvision`` builds any of :data:`TORCHVISION_NAMES` with ``torchvision.models.get_model``;
``weights: DEFAULT`` (or another name of the model's weights enum, e.g. ``IMAGENET1K_V1``) takes
torchvision's download into its cache (``$TORCH_HOME/hub/checkpoints``), ``weights: <path>`` a
local file, for clusters without internet. ``resnext_wsl`` is torchvision's ResNet with
groups=32 and width_per_group 8/16/32/48, with the weights of the WSL-Images release
(facebookresearch/WSL-Images ``hubconf.py``: weakly supervised on 940M Instagram images, then
fine-tuned on ImageNet).

Both files take the same loading code. After loading, the first convolution is adapted to the
input's channels (or the input repeated to RGB), and the last linear layer (the ImageNet head)
is replaced by one for the task's classes unless ``keep_head``.
"""

from __future__ import annotations

import logging
from pathlib import Path
from urllib.parse import urlparse

import torch
import torch.nn.functional as F
from torch import nn

from deepself.errors import DeepselfError
from deepself.models.backbone import PretrainedNet, adapt_conv, load_weights, no_weights, read_state_dict, set_submodule
from deepself.models.registry import register_model

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
IN_ADAPT = ("sum", "repeat")
# Smallest input side (after resize) each family's pooling survives, measured on torchvision 0.29.
_MIN_SIZE = {"alexnet": 63, "googlenet": 15, "vgg": 32}


def _min_size(name: str) -> int:
    return next((size for prefix, size in _MIN_SIZE.items() if name.startswith(prefix)), 1)


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
    """An ImageNet CNN (``net``) with its input, first convolution and head adapted to the task."""

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
        head_name = [n for n, m in net.named_modules() if isinstance(m, nn.Linear)][-1]
        self.head_name = f"net.{head_name}"
        if state is not None:
            if keep_head and f"{head_name}.weight" not in state:
                raise DeepselfError(f"model args keep_head: {source} holds no pretrained head ({head_name}) for "
                                    f"{label}; set keep_head: false")
            load_weights(net, state, source, label, ignore=ignore, optional=() if keep_head else (f"{head_name}.",))
        conv_name, conv = next((n, m) for n, m in net.named_modules() if isinstance(m, nn.Conv2d))
        if in_adapt == "sum":
            set_submodule(net, conv_name, adapt_conv(conv, n_chans))
        if keep_head:
            if n_outputs != self.head.out_features:
                log.warning("%s: keep_head gives %d outputs, the task has %d classes", label,
                            self.head.out_features, n_outputs)
        else:
            set_submodule(self, self.head_name, nn.Linear(self.head.in_features, n_outputs))
        self.set_train_mode(train_mode, backbone_lr_scale)

    def forward(self, x):
        if self.in_adapt == "repeat" and x.shape[1] != 3:
            x = (x if x.shape[1] == 1 else x.mean(1, keepdim=True)).expand(-1, 3, -1, -1)
        if self.resize is not None:
            x = F.interpolate(x, size=self.resize, mode="bilinear", align_corners=False)
        return self.net(x)


def _torchvision_state(name: str, weights) -> tuple[dict | None, str]:
    """(state dict, where it came from) for ``weights``: None, a weights enum name, or a file path."""
    import torchvision  # imported here: torchvision takes a second to import

    if no_weights(weights):
        return None, "random initialisation"
    enum = torchvision.models.get_model_weights(name)
    if weights in enum.__members__:
        return download(enum[weights].url, f"torchvision {name}")
    return read_state_dict(weights, f"torchvision {name}",
                           f"torchvision's {name} weights are at {enum.DEFAULT.url} (weights: DEFAULT downloads them)"
                           ), str(weights)


@register_model("torchvision", inputs=("2d",))
def torchvision_model(n_chans, n_freqs, n_times, n_outputs, *, name="resnet18", weights=None, in_adapt="sum",
                      resize=None, keep_head=False, train_mode="finetune", backbone_lr_scale=0.1):
    """An ImageNet CNN of torchvision on maps or images (B, C, F, T).

    Parameters
    ----------
    name
        One of :data:`TORCHVISION_NAMES`: AlexNet (Krizhevsky 2014), GoogLeNet (Szegedy 2015), VGG
        (Simonyan & Zisserman 2015), ResNet (He 2016), ResNeXt (Xie 2017), MobileNet V2/V3
        (Sandler 2018, Howard 2019), Wide ResNet (Zagoruyko & Komodakis 2016).
    weights
        None or "none" (random), "DEFAULT" or a weights enum name (torchvision's download), or a
        file path (a state dict in torchvision's layout).
    in_adapt
        ``sum``: the first convolution takes C channels (RGB filters summed and shared among them);
        ``repeat``: the input is repeated to 3 channels (the channel mean when C is not 1 or 3).
    resize
        [height, width] the input is resized to (bilinear), or None.
    keep_head
        Keep the ImageNet head (1000 outputs) instead of a new one for ``n_outputs`` classes.
    train_mode, backbone_lr_scale
        ``finetune``, ``freeze`` (train the head only), ``lower_lr`` (backbone at lr * scale) or
        ``probe`` (the backbone's embeddings computed once, in eval mode; the head trained on them).
    """
    import torchvision  # imported here: torchvision takes a second to import

    if name not in TORCHVISION_NAMES:
        raise DeepselfError(f"model args name: {name!r} is not one of {list(TORCHVISION_NAMES)}")
    state, source = _torchvision_state(name, weights)
    extra, ignore = {}, ()
    if name == "googlenet":
        # Released files carry the auxiliary classifiers, which training does not use here. The
        # ported weights expect transform_input, which works on RGB input only.
        rgb = n_chans == 3 or in_adapt == "repeat"
        extra = {"aux_logits": False, "init_weights": state is None, "transform_input": state is not None and rgb}
        ignore = ("aux1.", "aux2.")
    net = torchvision.models.get_model(name, weights=None, **extra)
    return VisionNet(f"torchvision {name}", net, n_chans, n_freqs, n_times, n_outputs, state=state, source=source,
                     in_adapt=in_adapt, resize=resize, keep_head=keep_head, train_mode=train_mode,
                     backbone_lr_scale=backbone_lr_scale, ignore=ignore)


@register_model("resnext_wsl", inputs=("2d",))
def resnext_wsl(n_chans, n_freqs, n_times, n_outputs, *, name="resnext101_32x8d", weights=None, in_adapt="sum",
                resize=None, keep_head=False, train_mode="finetune", backbone_lr_scale=0.1):
    """ResNeXt-101 32xNd pretrained on Instagram hashtags (Mahajan et al., ECCV 2018), N = 8, 16, 32, 48.

    ``weights: DEFAULT`` downloads the WSL-Images file (:data:`WSL_URLS`); a path loads a local
    copy. The other keys are those of :func:`torchvision_model`.
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
    from torchvision.models.resnet import Bottleneck, ResNet  # imported here: slow to import

    net = ResNet(Bottleneck, [3, 4, 23, 3], groups=32, width_per_group=width)
    return VisionNet(label, net, n_chans, n_freqs, n_times, n_outputs, state=state, source=source, in_adapt=in_adapt,
                     resize=resize, keep_head=keep_head, train_mode=train_mode, backbone_lr_scale=backbone_lr_scale)
