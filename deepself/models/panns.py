"""PANNs: Cnn6, Cnn10 and Cnn14 of Kong et al., "PANNs: Large-Scale Pretrained Audio Neural Networks
for Audio Pattern Recognition", IEEE/ACM TASLP 28, 2020 (github.com/qiuqiangkong/audioset_tagging_cnn).

The layers and their names are those of the paper's code, so that the released AudioSet
checkpoints load key by key: ``bn0`` (batch norm over Mel bins), ``conv_block1..N`` (ConvBlock:
two 3x3 convolutions; ConvBlock5x5: one 5x5 convolution, Cnn6), global pooling (mean over
frequency, then max + mean over time), ``fc1`` and the head ``fc_audioset``. The input is a
log-Mel map (B, C, F = Mel bins, T); the released models use 64 Mel bins at 32 kHz (window 1024,
hop 320, 50-14000 Hz). The spectrogram and log-Mel extractor keys of those checkpoints are
ignored: deepself's feature stage computes the map. The SpecAugment and mixup of the paper's
training are not part of the model.
"""

from __future__ import annotations

import logging

import torch.nn.functional as F
from torch import nn

from deepself.errors import DeepselfError
from deepself.models.backbone import PretrainedNet, adapt_conv, load_weights, no_weights, read_state_dict
from deepself.models.registry import register_model

log = logging.getLogger(__name__)

ZENODO = "https://zenodo.org/record/3987831/files/"
CHECKPOINTS = {"cnn14": "Cnn14_mAP=0.431.pth", "cnn10": "Cnn10_mAP=0.380.pth", "cnn6": "Cnn6_mAP=0.343.pth"}
AUDIOSET_CLASSES = 527
IN_ADAPT = ("sum", "mean")


class ConvBlock(nn.Module):
    """Two 3x3 convolutions, each with batch norm and ReLU, then average pooling."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, padding=1, bias=False)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.bn2 = nn.BatchNorm2d(out_channels)

    def forward(self, x, pool_size=(2, 2)):
        x = F.relu(self.bn1(self.conv1(x)))
        x = F.relu(self.bn2(self.conv2(x)))
        return F.avg_pool2d(x, pool_size) if pool_size != (1, 1) else x


class ConvBlock5x5(nn.Module):
    """One 5x5 convolution with batch norm and ReLU, then average pooling (Cnn6)."""

    def __init__(self, in_channels: int, out_channels: int):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 5, padding=2, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)

    def forward(self, x, pool_size=(2, 2)):
        x = F.relu(self.bn1(self.conv1(x)))
        return F.avg_pool2d(x, pool_size) if pool_size != (1, 1) else x


# name -> (block, channels of each block, pooling of each block)
LAYOUTS = {
    "cnn6": (ConvBlock5x5, (64, 128, 256, 512), ((2, 2),) * 4),
    "cnn10": (ConvBlock, (64, 128, 256, 512), ((2, 2),) * 4),
    "cnn14": (ConvBlock, (64, 128, 256, 512, 1024, 2048), ((2, 2),) * 5 + ((1, 1),)),
}


class PANN(PretrainedNet):
    """One of :data:`LAYOUTS` on one-channel log-Mel maps, with the AudioSet head; returns logits.

    :func:`panns` loads weights into it, then adapts it to C channels and the task's classes.
    """

    head_name = "fc_audioset"

    def __init__(self, name: str, n_freqs: int, n_times: int, *, in_adapt: str = "sum"):
        super().__init__()
        if name not in LAYOUTS:
            raise DeepselfError(f"model args name: {name!r} is not one of {list(LAYOUTS)}")
        if in_adapt not in IN_ADAPT:
            raise DeepselfError(f"model args in_adapt: {in_adapt!r} is not one of {list(IN_ADAPT)}")
        block, channels, self.pools = LAYOUTS[name]
        shrink = 2 ** sum(p[0] > 1 for p in self.pools)
        if min(n_freqs, n_times) < shrink:
            raise DeepselfError(f"model arch panns: {name} pools frequency and time by {shrink}, the input is "
                                f"{n_freqs} x {n_times} (needs at least {shrink} x {shrink})")
        self.in_adapt = in_adapt
        self.bn0 = nn.BatchNorm2d(n_freqs)
        c_in = 1
        for i, c_out in enumerate(channels, start=1):
            setattr(self, f"conv_block{i}", block(c_in, c_out))
            c_in = c_out
        self.fc1 = nn.Linear(c_in, c_in)
        self.fc_audioset = nn.Linear(c_in, AUDIOSET_CLASSES)
        # As the paper's code: Xavier-uniform convolutions and linear layers, unit batch norm.
        for m in self.modules():
            if isinstance(m, (nn.Conv2d, nn.Linear)):
                nn.init.xavier_uniform_(m.weight)
                if m.bias is not None:
                    nn.init.zeros_(m.bias)
            elif isinstance(m, nn.BatchNorm2d):
                nn.init.ones_(m.weight)
                nn.init.zeros_(m.bias)

    def probe_head(self, names: tuple[str, ...]) -> nn.Module:
        """The layers after the pooled embedding that ``train_mode: probe`` trains, as :meth:`forward` runs them."""
        # forward's tail after the pooled embedding; with fc1 an identity, forward's ReLU on the
        # embedding changes nothing (max + mean of ReLU outputs is never negative)
        if names == ("fc1", "fc_audioset"):
            return nn.Sequential(nn.Dropout(0.5), self.fc1, nn.ReLU(), nn.Dropout(0.5), self.fc_audioset)
        if names == ("fc_audioset",):
            return nn.Sequential(nn.Dropout(0.5), self.fc_audioset)
        return super().probe_head(names)

    def forward(self, x):
        if self.in_adapt == "mean":
            x = x.mean(1, keepdim=True)
        x = x.transpose(2, 3)  # (B, C, T, mel) as in the paper's code
        x = self.bn0(x.transpose(1, 3)).transpose(1, 3)  # normalise each Mel bin
        for i, pool in enumerate(self.pools, start=1):
            x = getattr(self, f"conv_block{i}")(x, pool_size=pool)
            x = F.dropout(x, p=0.2, training=self.training)
        x = x.mean(dim=3)
        x = x.max(dim=2).values + x.mean(dim=2)
        x = F.dropout(x, p=0.5, training=self.training)
        x = F.relu(self.fc1(x))
        x = F.dropout(x, p=0.5, training=self.training)
        return self.fc_audioset(x)


@register_model("panns", inputs=("2d",))
def panns(n_chans, n_freqs, n_times, n_outputs, *, name="cnn10", weights=None, in_adapt="sum", keep_head=False,
          train_mode="finetune", backbone_lr_scale=0.1):
    """A PANNs CNN (Kong et al. 2020) on log-Mel maps (B, C, F = Mel bins, T).

    Parameters
    ----------
    name
        cnn6, cnn10 or cnn14.
    weights
        None or "none" (random), or the path of a checkpoint: an official file
        (:data:`CHECKPOINTS`, Zenodo record 3987831) or a partial one in the same layout
        (e.g. from ``deepself weights import panns_aisfx``): bn0, fc1 and fc_audioset may be
        missing from it and keep their initial values. There is no automatic download.
    in_adapt
        For C != 1 channels: ``sum`` (conv_block1 takes C channels, each 1/C of the filter) or
        ``mean`` (the channels are averaged into one map).
    keep_head
        Keep the 527 AudioSet outputs instead of a new head for ``n_outputs`` classes.
    train_mode, backbone_lr_scale
        ``finetune``, ``freeze`` (train the head only), ``lower_lr`` (backbone at lr * scale) or
        ``probe`` (embeddings computed once, the head trained on them; with a partial checkpoint
        that lacks fc1, fc1 is trained with the head).
    """
    model = PANN(name, n_freqs, n_times, in_adapt=in_adapt)
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
        loaded = load_weights(model, state, str(weights), label, ignore=("spectrogram_extractor.", "logmel_extractor."),
                              optional=optional)
        if "fc1.weight" not in loaded:  # a partial checkpoint: fc1 is new, so a probe trains it too
            model.probe_names = ("fc1", "fc_audioset")
    if in_adapt == "sum":
        model.conv_block1.conv1 = adapt_conv(model.conv_block1.conv1, n_chans)
    if not keep_head:
        model.fc_audioset = nn.Linear(model.fc1.in_features, n_outputs)
    elif n_outputs != AUDIOSET_CLASSES:
        log.warning("%s: keep_head gives %d outputs, the task has %d classes", label, AUDIOSET_CLASSES, n_outputs)
    model.set_train_mode(train_mode, backbone_lr_scale)
    return model
