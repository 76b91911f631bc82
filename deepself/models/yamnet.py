"""YAMNet: Google's AudioSet sound event classifier (Plakal & Ellis, 2020; github.com/tensorflow/models,
research/audioset/yamnet), in PyTorch.

A MobileNet v1 (Howard et al., "MobileNets: Efficient Convolutional Neural Networks for Mobile
Vision Applications", arXiv 2017): one 3x3 convolution of stride 2, then 13 depthwise-separable
blocks (depthwise 3x3, pointwise 1x1, each followed by batch norm and ReLU), then the mean over the
map, 1024 values, and a dense layer to 521 AudioSet classes (sigmoid scores). It runs on patches of
96 frames x 64 Mel bands (0.96 s) taken every 48 frames (0.48 s) from a log-Mel map at 16 kHz:
window 25 ms (400 samples, periodic Hann, FFT 512), hop 10 ms, magnitude, 64 HTK Mel bands from
125 to 7500 Hz, ``log(mel + 0.001)`` (config/esc10.yaml's ``yamnet`` feature makes exactly this
map). One 1024-value embedding per patch; a clip's embedding is their mean.

The released weights are those of the official TFLite file (``deepself weights import yamnet
--from yamnet.tflite``): there batch norm is folded into each convolution (a weight and a bias),
so the convolutions here carry biases and no batch norm layers. TensorFlow pads a stride-2 "same"
convolution by one row and column at the end only; :class:`_SamePad` does that, so that the
windows are TensorFlow's.
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal

import torch
import torch.nn.functional as F
from torch import nn

from deepself.errors import DeepselfError
from deepself.models.backbone import (PretrainedNet, TrainMode, adapt_conv, load_weights, no_weights,
                                      read_state_dict)
from deepself.models.registry import Range, register_model

log = logging.getLogger(__name__)

PATCH_FRAMES, PATCH_HOP, N_MELS = 96, 48, 64
AUDIOSET_CLASSES = 521
# (stride, output channels) of the 13 separable blocks (yamnet.py's _YAMNET_LAYER_DEFS, layers 2-14).
SEPARABLE = ((1, 64), (2, 128), (1, 128), (2, 256), (1, 256), (2, 512),
             (1, 512), (1, 512), (1, 512), (1, 512), (1, 512), (2, 1024), (1, 1024))
POOLINGS = ("mean", "max")
WHERE = ("download yamnet.tflite from Google's YAMNet model page (Kaggle Models / TF Hub, "
         "google/yamnet, TFLite variant) and run: deepself weights import yamnet --from yamnet.tflite --out FILE")


class _SamePad(nn.Module):
    """TensorFlow's "same" padding of a 3x3 convolution: (0, 1) at stride 2, (1, 1) at stride 1."""

    def __init__(self, stride: int):
        super().__init__()
        self.pad = (0, 1, 0, 1) if stride == 2 else (1, 1, 1, 1)

    def forward(self, x):
        return F.pad(x, self.pad)


def _conv(c_in: int, c_out: int, kernel: int, stride: int, groups: int = 1) -> nn.Sequential:
    """A convolution with the batch norm folded in (a bias), then ReLU."""
    pad = [_SamePad(stride)] if kernel == 3 else []
    return nn.Sequential(*pad, nn.Conv2d(c_in, c_out, kernel, stride, groups=groups), nn.ReLU())


class YAMNet(PretrainedNet):
    """YAMNet on log-Mel maps (B, C, 64 Mel bands, frames); returns logits (the AudioSet head's before
    the sigmoid, or the task's)."""

    head_names = ("fc",)

    def __init__(self, n_times: int, *, pooling: str = "mean"):
        super().__init__()
        if pooling not in POOLINGS:
            raise DeepselfError(f"model args pooling: {pooling!r} is not one of {list(POOLINGS)}")
        if n_times < PATCH_FRAMES:
            raise DeepselfError(f"model arch yamnet: patches are {PATCH_FRAMES} frames (0.96 s at a 10 ms hop), "
                                f"the map has {n_times}")
        self.pooling = pooling
        layers = [_conv(1, 32, 3, 2)]
        c_in = 32
        for stride, c_out in SEPARABLE:
            layers += [_conv(c_in, c_in, 3, stride, groups=c_in), _conv(c_in, c_out, 1, 1)]
            c_in = c_out
        self.features = nn.Sequential(*layers)
        self.fc = nn.Linear(c_in, AUDIOSET_CLASSES)

    def patch_embeddings(self, x: torch.Tensor) -> torch.Tensor:
        """Embeddings (B, patches, 1024) of the 96-frame patches, every 48 frames, of maps (B, C, 64, T)."""
        patches = x.unfold(-1, PATCH_FRAMES, PATCH_HOP)  # (B, C, mels, P, 96)
        b, c, mels, p, _ = patches.shape
        # TensorFlow's patch is (frames, mels): frames are the height, Mel bands the width.
        patches = patches.permute(0, 3, 1, 4, 2).reshape(b * p, c, PATCH_FRAMES, mels)
        return self.features(patches).mean(dim=(2, 3)).reshape(b, p, -1)

    def forward_features(self, x):
        """The clip's embedding (B, 1024): its patches' embeddings, pooled (mean or max)."""
        e = self.patch_embeddings(x)
        return e.mean(dim=1) if self.pooling == "mean" else e.max(dim=1).values

    def forward_head(self, x, pre_logits: bool = False):
        return x if pre_logits else self.fc(x)

    def get_classifier(self) -> nn.Linear:
        return self.fc


@register_model("yamnet", inputs=("2d",))
def yamnet(n_chans, n_freqs, n_times, n_outputs, *, weights: str | None = None, pooling: Literal[POOLINGS] = "mean",
           keep_head: bool = False, train_mode: TrainMode = "finetune",
           backbone_lr_scale: Annotated[float, Range(0)] = 0.1):
    """YAMNet (AudioSet, 521 classes) on YAMNet's log-Mel maps (B, C, 64 Mel bands, frames at 10 ms).

    Parameters
    ----------
    weights
        null or none (random), or the file `deepself weights import yamnet --from yamnet.tflite --out FILE`
        writes from the official TFLite file.
    pooling
        How a clip's embedding pools the 1024-value embeddings of its 0.96-s patches (every 0.48 s): mean or
        max.
    %(keep_head)s
    %(train_mode)s
    %(backbone_lr_scale)s

    Notes
    -----
    The weights file holds the official TFLite weights, dequantised. ``pooling: mean`` is the
    clip-level use of YAMNet's embeddings. More than one channel: the first convolution takes C
    channels, each with 1/C of the filter.

    References
    ----------
    Plakal & Ellis, YAMNet (tensorflow/models, 2020); MobileNet v1: Howard et al., arXiv 2017
    """
    model = YAMNet(n_times, pooling=pooling)
    if not no_weights(weights):
        if n_freqs != N_MELS:
            raise DeepselfError(f"model args weights: YAMNet's weights read {N_MELS} Mel bands, the feature has "
                                f"{n_freqs} (use YAMNet's front end: see config/esc10.yaml's yamnet feature)")
        if weights == "DEFAULT":
            raise DeepselfError(f"model args weights: yamnet loads a local file only; {WHERE}")
        state = read_state_dict(weights, "yamnet", WHERE)
        load_weights(model, state, str(weights), "yamnet", optional=() if keep_head else ("fc.",))
    conv = model.features[0][1]
    model.features[0][1] = adapt_conv(conv, n_chans)
    if not keep_head:
        model.fc = nn.Linear(model.fc.in_features, n_outputs)
    elif n_outputs != AUDIOSET_CLASSES:
        log.warning("yamnet: keep_head gives %d outputs, the task has %d classes", AUDIOSET_CLASSES, n_outputs)
    model.set_train_mode(train_mode, backbone_lr_scale)
    return model
