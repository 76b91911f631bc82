"""One fold's training: learns a separable task, is deterministic, and its checkpoint rebuilds the model."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch

from deepself.config import load_schema
from deepself.io.store import create_store
from deepself.models import create_model
from deepself.train import normalize, train_fold

TRAIN_DEFAULTS = {k: v["default"] for k, v in load_schema()["definitions"]["train"]["properties"].items()}


@pytest.fixture
def task(tmp_path):
    """60 maps (2 channels x 8 bins x 12 frames), 3 classes, each class bright in its own band; 3 folds."""
    rng = np.random.default_rng(0)
    n, labels = 60, np.arange(60) % 3
    x = rng.normal(size=(n, 2, 8, 12)).astype(np.float32)
    for i, c in enumerate(labels):
        x[i, :, 2 * c : 2 * c + 2] += 3.0
    ids = [f"s{i:02d}" for i in range(n)]
    with create_store(tmp_path / "maps.h5", n, x.shape[1:], {"kind": "signal", "layout": "CFT"}) as w:
        w.write(ids, x)
    sheet = pd.DataFrame({"id": ids, "label": [f"c{c}" for c in labels], "fold": [str(i // 3 % 3 + 1) for i in range(n)]})
    sheet.to_csv(tmp_path / "samples.csv", index=False)
    return tmp_path


def _spec(arch, **train):
    args = {"channels": [8, 8], "pool": [1, 2]} if arch == "cnn2d" else {"hidden": [32]}
    return {"name": arch, "arch": arch, "feature": "maps", "args": args, "classes": None, "dev_fraction": 0.25,
            "cv_seed": 0, "train": {**TRAIN_DEFAULTS, "epochs": 12, "batch_size": 8, "lr": 0.01, **train}}


@pytest.mark.parametrize("arch", ["cnn2d", "fnn"])
def test_learns_a_separable_task(task, arch):
    result = train_fold(task / "samples.csv", task / "maps.h5", "2", _spec(arch), task / arch)
    assert result["test_uar"] >= 0.9
    preds = pd.read_csv(task / arch / "predictions.csv")
    assert set(preds["id"]) == {f"s{i:02d}" for i in range(60) if i // 3 % 3 == 1}
    assert result["n_test"] == len(preds) and result["n_train"] + result["n_dev"] == 60 - len(preds)
    history = pd.read_csv(task / arch / "history.csv")
    assert len(history) == 12
    assert result["best_epoch"] == int(history["dev_uar"].idxmax()) + 1
    assert result["dev_uar"] == pytest.approx(history["dev_uar"].max())


def test_same_seed_same_predictions(task):
    a = train_fold(task / "samples.csv", task / "maps.h5", "1", _spec("cnn2d", epochs=3), task / "a")
    b = train_fold(task / "samples.csv", task / "maps.h5", "1", _spec("cnn2d", epochs=3), task / "b")
    c = train_fold(task / "samples.csv", task / "maps.h5", "1", _spec("cnn2d", epochs=3, seed=1), task / "c")
    pa, pb, pc = (pd.read_csv(task / d / "predictions.csv") for d in "abc")
    pd.testing.assert_frame_equal(pa, pb)
    assert a["dev_uar"] == b["dev_uar"]
    assert not np.allclose(pa.filter(like="p_").to_numpy(), pc.filter(like="p_").to_numpy())


def test_checkpoint_rebuilds_the_model(task):
    train_fold(task / "samples.csv", task / "maps.h5", "3", _spec("cnn2d", epochs=2), task / "m")
    ckpt = torch.load(task / "m" / "checkpoint.pt", weights_only=True)
    model = create_model(ckpt["model"], **ckpt["model_args"])
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    assert ckpt["classes"] == ["c0", "c1", "c2"]
    preds = pd.read_csv(task / "m" / "predictions.csv")
    from deepself.io.store import open_store

    with open_store(task / "maps.h5") as store:
        x = torch.from_numpy(store.read(list(preds["id"])))
    with torch.no_grad():
        proba = torch.softmax(model(normalize(x, ckpt["normalize"])), 1).numpy()
    np.testing.assert_allclose(proba, preds.filter(like="p_").to_numpy(), atol=1e-5)
    summary = json.loads((task / "m" / "summary.json").read_text())
    assert summary["best_epoch"] == ckpt["best_epoch"]
