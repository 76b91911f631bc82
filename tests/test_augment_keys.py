"""One list of augmentations (deepself.config.AUGMENTATIONS): the schema, augment.py and the probe follow it.

Each test fails when one of them drifts: a key added to the schema but not declared (or the other
way round), a description that names another input than the declared layout, an augmentation that
augment.py does not apply to the layout it is declared for, or applies to another.
"""

from __future__ import annotations

import pytest
import torch

from deepself.config import AUGMENT_FITS, AUGMENTATIONS, load_schema
from deepself.errors import DeepselfError
from deepself.training import probe
from deepself.training.augment import augment

PROPERTIES = load_schema()["definitions"]["train"]["properties"]["augment"]["properties"]
OFF = {key: prop["default"] for key, prop in PROPERTIES.items()}
ON = {"specaugment": {"freq_masks": 2, "freq_width": 4, "time_masks": 2, "time_width": 4}, "shift": 0.5,
      "gain_db": 6.0, "flip": True, "crop_pad": 2, "mixup": 0.4}
SHAPES = {"CFT": (8, 2, 16, 20), "CT": (8, 2, 64), "CHW": (8, 3, 12, 12)}
# How the schema's descriptions name the input each augmentation fits.
NAMED = {"CFT": "Feature maps:", "CT": "Signals:", "CHW": "Images:", None: "Any input:"}


def test_the_schema_declares_the_same_augmentations():
    assert list(PROPERTIES) != [] and set(PROPERTIES) == set(AUGMENTATIONS)
    assert set(ON) == set(AUGMENTATIONS)


@pytest.mark.parametrize("key", sorted(AUGMENTATIONS))
def test_the_schema_describes_the_declared_input(key):
    assert PROPERTIES[key]["description"].startswith(NAMED[AUGMENTATIONS[key]])


def test_each_layout_fits_what_is_declared_for_it():
    assert {key for keys in AUGMENT_FITS.values() for key in keys} == {k for k, v in AUGMENTATIONS.items() if v}


@pytest.mark.parametrize("key", sorted(k for k, v in AUGMENTATIONS.items() if v))
@pytest.mark.parametrize("layout", sorted(SHAPES))
def test_augment_applies_each_augmentation_to_its_layout_only(key, layout):
    x = torch.randn(SHAPES[layout]) + 3.0
    spec = {**OFF, key: ON[key]}
    if AUGMENTATIONS[key] != layout:
        with pytest.raises(DeepselfError, match=f"train.augment.{key}"):
            augment(x, layout, spec, torch.Generator().manual_seed(0))
        return
    assert not torch.equal(augment(x, layout, spec, torch.Generator().manual_seed(0)), x)
    assert torch.equal(augment(x, layout, OFF, torch.Generator().manual_seed(0)), x)


@pytest.mark.parametrize("layout", sorted(SHAPES))
def test_any_input_augmentations_fit_every_layout(layout):
    for key in (k for k, v in AUGMENTATIONS.items() if v is None):
        x = torch.randn(SHAPES[layout])
        assert torch.equal(augment(x, layout, {**OFF, key: ON[key]}, torch.Generator().manual_seed(0)), x)


@pytest.mark.parametrize("key", sorted(AUGMENTATIONS))
def test_a_probe_refuses_every_augmentation(key):
    with pytest.raises(DeepselfError, match=f"train.augment.{key} "):
        probe.check_augment({"augment": {**OFF, key: ON[key]}}, "m")
    probe.check_augment({"augment": OFF}, "m")
