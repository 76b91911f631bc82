"""benchmarks/esc10_dag.py: its deepself config is valid, and its plain side splits and holds out as deepself does."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf

from deepself.config import validate_config
from deepself.io.preflight import fold_names
from deepself.training.data import dev_split

SCRIPT = Path(__file__).resolve().parents[1] / "benchmarks" / "esc10_dag.py"
_spec = importlib.util.spec_from_file_location("esc10_dag", SCRIPT)
esc10_dag = importlib.util.module_from_spec(_spec)
_spec.loader.exec_module(esc10_dag)


@pytest.fixture
def esc(tmp_path):
    """ESC-10's layout in miniature: 2 classes x 5 folds x 2 clips of 0.5 s at 8 kHz, one recording per clip."""
    rng = np.random.default_rng(0)
    t = np.arange(4000) / 8000
    for c, (name, hz) in enumerate([("001 - Dog bark", 300.0), ("002 - Rain", 2000.0)]):
        (tmp_path / name).mkdir()
        for fold in range(1, 6):
            for take in range(2):
                y = np.sin(2 * np.pi * hz * t) + 0.1 * rng.normal(size=t.size)
                sf.write(tmp_path / name / f"{fold}-{100 * c + 10 * fold + take}-A.wav", 0.5 * y, 8000)
    return tmp_path


def test_config_is_valid_and_holds_out_the_chosen_folds(esc, tmp_path):
    config = validate_config(esc10_dag.make_config(esc, tmp_path / "results", ["2", "4"], 3, 16, "resnet18", "cpu",
                                                   32, 1024, {"patience": 2}))
    assert fold_names(config["data"], config["cv"]) == ["2", "4"]
    model = config["models"]["resnet18"]
    assert (model["arch"], model["args"]["name"], model["args"]["weights"]) == ("torchvision", "resnet18", None)
    assert (model["train"]["epochs"], model["train"]["batch_size"], model["train"]["patience"]) == (3, 16, 2)


def test_plain_dev_split_is_deepselfs():
    rng = np.random.default_rng(1)
    groups = rng.integers(0, 120, 320)
    labels = rng.integers(0, 10, 120)[groups]  # clips of one recording share a class, as in ESC-10
    ours, theirs = dev_split(labels, groups, 0.2, 0), esc10_dag.dev_split(labels, groups)
    assert all(np.array_equal(a, b) for a, b in zip(ours, theirs))


def test_plain_side_trains_on_the_other_folds_only(esc):
    result = esc10_dag.plain(esc, ["3"], epochs=2, batch_size=4, arch="resnet18", device="cpu", threads=1,
                             n_mels=16, hop_length=512)
    fold = result["folds"]["3"]
    assert (fold["n_test"], fold["n_fit"] + fold["n_dev"], fold["classes"]) == (4, 16, 2)
    assert fold["n_dev"] > 0
    assert set(result["folds"]) == {"3"} and set(result["stages"]) == {"features", "fold 3"}
    assert result["uar_mean"] == fold["uar"]
