"""Training-time augmentation of a batch, on whatever device the batch is on.

Which augmentations apply follows the layout of the store the model learns from: time/frequency
masking (SpecAugment, Park et al. 2019) for maps (C, F, T); random shift and gain for signals
(C, T); flips and padded crops for images (C, H, W); mixup (Zhang et al. 2018) for all, as
:data:`deepself.config.AUGMENTATIONS` declares them. One that does not fit the input stops training
(the config check stops it before any job). Every random draw comes from the generator passed in,
so a resumed run draws what an uninterrupted one would. Development and held-out samples are never
augmented.
"""

from __future__ import annotations

import numpy as np
import torch

from deepself.config import AUGMENT_LAYOUTS, unfit_augmentations
from deepself.errors import DeepselfError


def _uniform(n: int, generator: torch.Generator, device) -> torch.Tensor:
    return torch.rand(n, generator=generator).to(device)


def _mask_axis(x: torch.Tensor, axis: int, n_masks: int, width: int, generator: torch.Generator) -> torch.Tensor:
    """Zero ``n_masks`` random bands of up to ``width`` bins along ``axis`` of each sample."""
    size = x.shape[axis]
    positions = torch.arange(size, device=x.device)
    keep = torch.ones(x.shape[0], size, dtype=torch.bool, device=x.device)
    for _ in range(n_masks):
        widths = (_uniform(x.shape[0], generator, x.device) * (min(width, size) + 1)).long()
        starts = (_uniform(x.shape[0], generator, x.device) * (size - widths + 1)).long()
        keep &= ~((positions >= starts[:, None]) & (positions < (starts + widths)[:, None]))
    shape = [x.shape[0]] + [1] * (x.ndim - 1)
    shape[axis] = size
    return x * keep.view(shape).to(x.dtype)


def spec_augment(x, generator, *, freq_masks=2, freq_width=8, time_masks=2, time_width=16):
    """SpecAugment masking of (B, C, F, T) maps: the same bands in every channel of a sample."""
    x = _mask_axis(x, 2, freq_masks, freq_width, generator)
    return _mask_axis(x, 3, time_masks, time_width, generator)


def shift_and_gain(x, generator, *, shift=0.0, gain_db=0.0):
    """Circular shift by up to ``shift`` of the length, and a gain of up to ± ``gain_db`` dB, per sample."""
    if shift > 0:
        n = x.shape[-1]
        offsets = ((_uniform(x.shape[0], generator, x.device) * 2 - 1) * shift * n).long()
        index = (torch.arange(n, device=x.device)[None, :] - offsets[:, None]) % n
        x = torch.gather(x, -1, index[:, None, :].expand(x.shape[0], x.shape[1], n))
    if gain_db > 0:
        db = (_uniform(x.shape[0], generator, x.device) * 2 - 1) * gain_db
        x = x * (10 ** (db / 20)).view(-1, *[1] * (x.ndim - 1)).to(x.dtype)
    return x


def flip_and_crop(x, generator, *, flip=False, crop_pad=0):
    """Horizontal flip with probability 1/2 and a random crop of the image zero-padded by ``crop_pad``."""
    b, _, h, w = x.shape
    if flip:
        flipped = _uniform(b, generator, x.device) < 0.5
        x = torch.where(flipped.view(b, 1, 1, 1), x.flip(-1), x)
    if crop_pad > 0:
        padded = torch.nn.functional.pad(x, [crop_pad] * 4)
        dy = (_uniform(b, generator, x.device) * (2 * crop_pad + 1)).long()
        dx = (_uniform(b, generator, x.device) * (2 * crop_pad + 1)).long()
        rows = dy[:, None] + torch.arange(h, device=x.device)  # (B, H): the rows each sample keeps
        cols = dx[:, None] + torch.arange(w, device=x.device)  # (B, W)
        batch = torch.arange(b, device=x.device)[:, None, None, None]
        channel = torch.arange(x.shape[1], device=x.device)[None, :, None, None]
        x = padded[batch, channel, rows[:, None, :, None], cols[:, None, None, :]]
    return x


def mixup(x, targets, generator, alpha: float):
    """Mix each sample with another of the batch; ``targets`` are one-hot or soft labels (B, K)."""
    lam = torch.from_numpy(_beta(alpha, x.shape[0], generator)).to(x.device)
    partner = torch.randperm(x.shape[0], generator=generator).to(x.device)
    lam_x = lam.view(-1, *[1] * (x.ndim - 1)).to(x.dtype)
    return lam_x * x + (1 - lam_x) * x[partner], lam[:, None] * targets + (1 - lam[:, None]) * targets[partner]


def _beta(alpha: float, n: int, generator: torch.Generator) -> np.ndarray:
    """Beta(alpha, alpha) draws seeded from ``generator`` (torch.distributions would use the global RNG)."""
    seed = int(torch.randint(0, 2**31 - 1, (1,), generator=generator))
    return np.random.default_rng(seed).beta(alpha, alpha, n).astype(np.float32)


def augment(x: torch.Tensor, layout: str | None, spec: dict, generator: torch.Generator) -> torch.Tensor:
    """Apply the augmentations of ``spec`` (the ``train.augment`` config) to a batch of ``layout``.

    Raises
    ------
    DeepselfError
        If an augmentation that is switched on does not fit ``layout`` (see
        :func:`deepself.config.unfit_augmentations`):
        skipping it would train without it while the config says otherwise.
    """
    wrong = unfit_augmentations(spec, layout)
    if wrong:
        raise DeepselfError(f"config key train.augment.{wrong[0]}: does not apply to {AUGMENT_LAYOUTS[layout]}, the "
                            "model's input; remove it from this model's train.augment")
    if layout == "CFT" and spec["specaugment"]:
        x = spec_augment(x, generator, **spec["specaugment"])
    if layout == "CT":
        x = shift_and_gain(x, generator, shift=spec["shift"], gain_db=spec["gain_db"])
    if layout == "CHW":
        x = flip_and_crop(x, generator, flip=spec["flip"], crop_pad=spec["crop_pad"])
    return x
