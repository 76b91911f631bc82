"""PANNs: Cnn6, Cnn10 and Cnn14 of Kong et al., "PANNs: Large-Scale Pretrained Audio Neural Networks
for Audio Pattern Recognition", IEEE/ACM TASLP 28, 2020 (github.com/qiuqiangkong/audioset_tagging_cnn).

The layers and their names are those of the paper's code, so that the released AudioSet
checkpoints load key by key: ``bn0`` (batch norm over Mel bins), ``conv_block1..N`` (ConvBlock:
two 3x3 convolutions; ConvBlock5x5: one 5x5 convolution, Cnn6), global pooling (mean over
frequency, then max + mean over time), ``fc1`` and the head ``fc_audioset``; ``pooling: aisfx``
gives the network of aisfx's ConvBlocks instead (max pooling, no pooling after the last block,
max over time, no ``fc1``). The input is a
log-Mel map (B, C, F = Mel bins, T); the released models use 64 Mel bins at 32 kHz (window 1024,
hop 320, 50-14000 Hz). The spectrogram and log-Mel extractor keys of those checkpoints are
ignored: deepself's feature stage computes the map. The SpecAugment and mixup of the paper's
training are not part of the model.
"""

from __future__ import annotations

import logging
from typing import Annotated, Literal

import torch.nn.functional as F
from torch import nn

from deepself.errors import DeepselfError
from deepself.models.backbone import (PretrainedNet, TrainMode, adapt_conv, load_weights, no_weights,
                                      read_state_dict)
from deepself.models.registry import Range, register_model

log = logging.getLogger(__name__)

ZENODO = "https://zenodo.org/record/3987831/files/"
CHECKPOINTS = {"cnn14": "Cnn14_mAP=0.431.pth", "cnn10": "Cnn10_mAP=0.380.pth", "cnn6": "Cnn6_mAP=0.343.pth"}
AUDIOSET_CLASSES = 527
IN_ADAPT = ("sum", "mean")
# How the blocks pool and how the last block's map becomes the embedding:
# panns: average 2x2 after every block (LAYOUTS), then the mean over frequency, then max + mean
#   over time, then fc1 + ReLU (Kong et al.; the paper's "embedding" is fc1's output);
# aisfx: max 2x2 after every block but the last, which does not pool, then the mean over
#   frequency, then the max over time, and no fc1 (aisfx's EmbeddingNet('max', ...), whose 512
#   values are the embedding its blocks were trained to give).
POOLINGS = ("panns", "aisfx")


class ConvBlock(nn.Module):
    """Two 3x3 convolutions, each with batch norm and ReLU, then pooling (average in PANNs)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x, pool_size=(2, 2), pool_type="avg"):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return _pool(x, pool_size, pool_type)


class ConvBlock5x5(nn.Module):
    """One 5x5 convolution with batch norm and ReLU, then pooling (Cnn6)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 5, padding=2, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)

    def forward(self, x, pool_size=(2, 2), pool_type="avg"):
        return _pool(F.relu(self.bn1(self.conv1(x))), pool_size, pool_type)


def _pool(x, pool_size, pool_type: str):
    if pool_size == (1, 1):
        return x
    return F.avg_pool2d(x, pool_size) if pool_type == "avg" else F.max_pool2d(x, pool_size)


# name -> (block, channels of each block, pooling of each block)
LAYOUTS = {
    "cnn6": (ConvBlock5x5, (64, 128, 256, 512), ((2, 2),) * 4),
    "cnn10": (ConvBlock, (64, 128, 256, 512), ((2, 2),) * 4),
    "cnn14": (ConvBlock, (64, 128, 256, 512, 1024, 2048), ((2, 2),) * 5 + ((1, 1),)),
}


class PANN(PretrainedNet):
    """One of :data:`LAYOUTS` on one-channel log-Mel maps, with the AudioSet head; returns logits.

    ``pooling`` (:data:`POOLINGS`) says how the blocks pool and read out the embedding.
    :func:`panns` loads weights into it, then adapts it to C channels and the task's classes.
    """

    def __init__(self, name: str, n_freqs: int, n_times: int, *, in_adapt: str = "sum", pooling: str = "panns"):
        super().__init__()
        if name not in LAYOUTS:
            raise DeepselfError(f"model args name: {name!r} is not one of {list(LAYOUTS)}")
        if in_adapt not in IN_ADAPT:
            raise DeepselfError(f"model args in_adapt: {in_adapt!r} is not one of {list(IN_ADAPT)}")
        if pooling not in POOLINGS:
            raise DeepselfError(f"model args pooling: {pooling!r} is not one of {list(POOLINGS)}")
        block, channels, self.pools = LAYOUTS[name]
        self.pool_type = "avg"
        if pooling == "aisfx":
            self.pools, self.pool_type = ((2, 2),) * (len(channels) - 1) + ((1, 1),), "max"
        shrink = 2 ** sum(p[0] > 1 for p in self.pools)
        if min(n_freqs, n_times) < shrink:
            raise DeepselfError(f"model arch panns: {name} pools frequency and time by {shrink}, the input is "
                                f"{n_freqs} x {n_times} (needs at least {shrink} x {shrink})")
        self.in_adapt, self.pooling = in_adapt, pooling
        self.bn0 = nn.BatchNorm2d(n_freqs)
        c_in = 1
        for i, c_out in enumerate(channels, start=1):
            setattr(self, f"conv_block{i}", block(c_in, c_out))
            c_in = c_out
        self.fc1 = nn.Linear(c_in, c_in) if pooling == "panns" else None
        self.fc_audioset = nn.Linear(c_in, AUDIOSET_CLASSES)
        self.head_names = ("fc1", "fc_audioset") if pooling == "panns" else ("fc_audioset",)
        # As the paper's code: Xavier-uniform convolutions and linear layers, unit batch norm.
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def forward_features(self, x):
        """The pooled output of the last block (B, channels), as ``pooling`` reads it out."""
        if self.in_adapt == "mean":
            x = x.mean(1, keepdim=True)
        x = x.transpose(2, 3)  # (B, C, T, mel) as in the paper's code
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)  # normalise each Mel bin
        for i, pool in enumerate(self.pools, start=1):
            x = getattr(self, f"conv_block{i}")(x, pool_size=pool, pool_type=self.pool_type)
            x = F.dropout(x, p=0.2, training=self.training)
        x = x.mean(dim=3)
        return x.max(dim=2).values + x.mean(dim=2) if self.pooling == "panns" else x.max(dim=2).values

    def forward_head(self, x, pre_logits: bool = False):
        """panns: dropout, fc1, ReLU, dropout, fc_audioset; aisfx: dropout, fc_audioset."""
        x = F.dropout(x, p=0.5, training=self.training)
        if self.fc1 is not None:
            x = F.dropout(F.relu(self.fc1(x)), p=0.5, training=self.training)
        return x if pre_logits else self.fc_audioset(x)

    def get_classifier(self) -> nn.Linear:
        return self.fc_audioset


@register_model("panns", inputs=("2d",))
def panns(n_chans, n_freqs, n_times, n_outputs, *, name: Literal[tuple(LAYOUTS)] = "cnn10",
          weights: str | None = None, in_adapt: Literal[IN_ADAPT] = "sum", pooling: Literal[POOLINGS] = "panns",
          keep_head: bool = False, train_mode: TrainMode = "finetune",
          backbone_lr_scale: Annotated[float, Range(0)] = 0.1):
    """A PANNs CNN (Kong et al. 2020) on log-Mel maps (B, C, F = Mel bins, T).

    Parameters
    ----------
    name
        PANNs network (Kong et al. 2020): cnn6, cnn10 or cnn14, on a log-Mel map (the released weights: 64
        Mel bins).
    %(weights)s
    in_adapt
        Input channels C != 1: sum (the first convolution takes C channels, each 1/C of the filter) or mean
        (the channels averaged into one map).
    pooling
        How the blocks pool and read out the embedding: panns (average 2x2 after every block, max + mean over
        time, then fc1: Kong et al.) or aisfx (max 2x2 after every block but the last, which does not pool,
        then the max over time of the mean over frequency, no fc1: the network of aisfx's ConvBlocks).
    %(keep_head)s
    %(train_mode)s
    %(backbone_lr_scale)s

    Notes
    -----
    ``weights`` is an official file (:data:`CHECKPOINTS`, Zenodo record 3987831) or a partial one in
    the same layout (e.g. from ``deepself weights import panns_aisfx``): bn0, fc1 and fc_audioset may
    be missing from it and keep their initial values. There is no automatic download. A probe's
    logistic regression on ``forward_head(..., pre_logits=True)`` becomes fc_audioset.

    References
    ----------
    Kong et al., IEEE/ACM TASLP 2020
    """
    model = PANN(name, n_freqs, n_times, in_adapt=in_adapt, pooling=pooling)
    label = f"panns {name}"
    if not no_weights(weights):
        where = (f"download {CHECKPOINTS[name]} from {ZENODO}{CHECKPOINTS[name]} (Zenodo record 3987831) "
                 f"and set weights: to its path")
        if weights == "DEFAULT":
            raise DeepselfError(f"model args weights: {label} loads a local checkpoint only; {where}")
        state = read_state_dict(weights, label, where)
        if "bn0.weight" in state and state["bn0.weight"].shape[0] != n_freqs:
            raise DeepselfError(f"model args weights: {weights} was trained on {state['bn0.weight'].shape[0]} Mel "
                                f"bins, the feature has {n_freqs} (set the feature's n_mels)")
        optional = ("bn0.", "fc1.") + (() if keep_head else ("fc_audioset.",))
        # aisfx's network has no fc1: a file's fc1 (an official PANNs checkpoint) is not used
        ignore = ("spectrogram_extractor.", "logmel_extractor.") + (("fc1.",) if model.fc1 is None else ())
        loaded = load_weights(model, state, str(weights), label, ignore=ignore, optional=optional)
        if model.fc1 is not None and "fc1.weight" not in loaded and train_mode == "probe":
            log.warning("%s: fc1 is not in %s, so the probed embedding passes through a random fc1; "
                        "pooling: aisfx reads the blocks out without fc1", label, weights)
    if in_adapt == "sum":
        model.conv_block1.conv1 = adapt_conv(model.conv_block1.conv1, n_chans)
    if not keep_head:
        model.fc_audioset = nn.Linear(model.fc_audioset.in_features, n_outputs)
    elif n_outputs != AUDIOSET_CLASSES:
        log.warning("%s: keep_head gives %d outputs, the task has %d classes", label, AUDIOSET_CLASSES, n_outputs)
    model.set_train_mode(train_mode, backbone_lr_scale)
    return model
