import numpy as np
import pytest
import torch

from deepself.training.augment import augment, flip_and_crop, mixup, shift_and_gain, spec_augment
from deepself.errors import DeepselfError


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def test_spec_augment_masks_whole_bands_within_the_widths():
    x = torch.ones(16, 2, 20, 30)
    y = spec_augment(x, gen(), freq_masks=1, freq_width=4, time_masks=1, time_width=5)
    for b in range(16):
        zero_rows = (y[b, 0] == 0).all(dim=1).sum().item()
        zero_cols = (y[b, 0] == 0).all(dim=0).sum().item()
        assert zero_rows <= 4 and zero_cols <= 5
        assert torch.equal(y[b, 0] == 0, y[b, 1] == 0), "the same bands in every channel"
        assert set(y[b].unique().tolist()) <= {0.0, 1.0}
    assert (y == 0).any()
    assert torch.equal(spec_augment(x, gen(3)), spec_augment(x, gen(3))), "seeded"


def test_shift_keeps_the_samples_and_gain_stays_in_range():
    x = torch.randn(8, 3, 50)
    shifted = shift_and_gain(x, gen(), shift=0.2)
    for b in range(8):
        assert torch.allclose(torch.sort(shifted[b, 0]).values, torch.sort(x[b, 0]).values)
        # every circular shift is tried: the one found must be within 0.2 of the 50 samples
        k = next(k for k in range(-25, 25) if torch.allclose(torch.roll(x[b], k, -1), shifted[b]))
        assert abs(k) <= 10
    gained = shift_and_gain(x, gen(), gain_db=6.0)
    ratio = (gained / x).flatten(1)
    assert torch.allclose(ratio, ratio[:, :1].expand_as(ratio), atol=1e-5)
    db = 20 * torch.log10(ratio[:, 0])
    assert (db.abs() <= 6.0 + 1e-4).all() and db.std() > 0


def test_flip_and_crop_move_pixels_not_values():
    x = torch.arange(2 * 6 * 8, dtype=torch.float32).view(1, 2, 6, 8).repeat(32, 1, 1, 1)
    flipped = flip_and_crop(x, gen(), flip=True)
    n_flipped = sum(torch.equal(flipped[b], x[b].flip(-1)) for b in range(32))
    assert 0 < n_flipped < 32
    assert all(torch.equal(flipped[b], x[b]) or torch.equal(flipped[b], x[b].flip(-1)) for b in range(32))
    cropped = flip_and_crop(x, gen(), crop_pad=2)
    assert cropped.shape == x.shape
    padded = torch.nn.functional.pad(x, [2] * 4)
    offsets = set()
    for b in range(32):
        # each sample is the window of its zero-padded image at one offset of up to 2 pixels either way
        found = [(dy, dx) for dy in range(5) for dx in range(5)
                 if torch.equal(cropped[b], padded[b, :, dy:dy + 6, dx:dx + 8])]
        assert len(found) == 1, f"sample {b} is no crop of its padded image"
        offsets |= set(found)
    assert len(offsets) > 5, "the offsets vary from sample to sample"


def test_mixup_is_a_convex_combination():
    """Each mixed sample is lam * x[i] + (1 - lam) * x[j], its target the same mix of t[i] and t[j]."""
    x = torch.randn(10, 4, dtype=torch.float64)
    t = torch.nn.functional.one_hot(torch.arange(10) % 3, 3).double()
    xm, tm = mixup(x, t, gen(), alpha=0.4)
    np.testing.assert_allclose(tm.sum(1), 1.0, rtol=1e-6)
    assert not torch.equal(xm, x)
    for i in range(10):
        fits = []
        for j in range(10):
            d = x[i] - x[j]
            lam = 1.0 if j == i else float((xm[i] - x[j]) @ d / (d @ d))
            mixed = lam * x[i] + (1 - lam) * x[j]
            target = lam * t[i] + (1 - lam) * t[j]
            fits.append(-1e-6 <= lam <= 1 + 1e-6 and torch.allclose(xm[i], mixed, atol=1e-5)
                        and torch.allclose(tm[i], target, atol=1e-5))
        assert any(fits), f"sample {i} is no convex combination of two samples with their targets"


@pytest.mark.parametrize("layout, spec, key", [
    ("CT", {"specaugment": {"freq_masks": 1}}, "specaugment"),
    ("CFT", {"shift": 0.1}, "shift"),
    ("CHW", {"gain_db": 3.0}, "gain_db"),
    ("CT", {"flip": True}, "flip"),
    (None, {"crop_pad": 2}, "crop_pad"),
])
def test_an_augmentation_that_does_not_fit_the_input_raises(layout, spec, key):
    full = {"specaugment": None, "mixup": 0.0, "shift": 0.0, "gain_db": 0.0, "flip": False, "crop_pad": 0, **spec}
    x = torch.ones((2, 1, 8, 8) if layout in ("CFT", "CHW") else (2, 1, 8))
    with pytest.raises(DeepselfError, match=f"train.augment.{key}: does not apply to"):
        augment(x, layout, full, gen())


@pytest.mark.parametrize("fn", [lambda x, g: spec_augment(x, g), lambda x, g: flip_and_crop(x, g, flip=True, crop_pad=1)])
def test_same_generator_state_same_draws(fn):
    x = torch.randn(4, 1, 12, 12)
    assert torch.equal(fn(x, gen(5)), fn(x, gen(5)))
