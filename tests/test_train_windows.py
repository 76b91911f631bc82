"""Training on windows of recordings and MiniRocket as a probe: decisions per recording, nothing leaks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from deepself.config import validate_config
from deepself.inference import load_checkpoint
from deepself.io.store import create_store
from deepself.train import TrainingData, train_fold

TRAIN_DEFAULTS = validate_config({"experiment": "t", "data": {"adapter": "digits"}, "features": {"f": {"kind": "raw"}},
                                  "models": {"m": {"arch": "fnn", "feature": "f"}}})["train"]
RATE = 100.0


@pytest.fixture
def recordings(tmp_path):
    """60 recordings of 3 s at 100 Hz, 3 classes: class c is noise plus a 5 * (c + 1) Hz sine; 3 folds."""
    rng = np.random.default_rng(0)
    n, labels = 60, np.arange(60) % 3
    t = np.arange(int(3 * RATE)) / RATE
    x = rng.normal(scale=0.5, size=(n, 1, len(t))).astype(np.float32)
    for i, c in enumerate(labels):
        x[i, 0] += np.sin(2 * np.pi * 5 * (c + 1) * t + rng.uniform(0, 2 * np.pi)).astype(np.float32)
    ids = [f"r{i:02d}" for i in range(n)]
    with create_store(tmp_path / "raw.h5", n, x.shape[1:], {"kind": "signal", "layout": "CT", "sample_rate": RATE}) as w:
        w.write(ids, x)
    pd.DataFrame({"id": ids, "label": [f"c{c}" for c in labels],
                  "fold": [str(i // 3 % 3 + 1) for i in range(n)]}).to_csv(tmp_path / "samples.csv", index=False)
    return tmp_path


def _spec(arch, args, windows=None, **train):
    return {"name": arch, "arch": arch, "feature": "raw", "args": args, "windows": windows, "classes": None,
            "dev_fraction": 0.25, "cv_seed": 0,
            "train": {**TRAIN_DEFAULTS, "epochs": 8, "batch_size": 16, "lr": 0.01, **train}}


WINDOWS = {"length_s": 0.5, "hop_s": 0.25, "eval_hop_s": 0.5, "aggregate": "log_mean", "random_offset": True}


def test_windows_of_a_recording_stay_in_its_part(recordings):
    data = TrainingData(recordings / "samples.csv", recordings / "raw.h5", None)
    split = data.split("2", _spec("cnn1d", {}, WINDOWS))
    parts = split.windows
    owners = [set(parts.view.recording[p].tolist()) for p in (parts.fit, parts.dev, parts.test)]
    assert owners == [set(split.fit.tolist()), set(split.dev.tolist()), set(split.test.tolist())]
    assert len(parts.fit) == 11 * len(split.fit) and len(parts.test) == 6 * len(split.test)  # hops 25 and 50
    assert torch.equal(parts.y, data.y[torch.from_numpy(parts.view.recording)])
    # statistics of the fit part's windows, not of the development or held-out recordings
    fit_windows = parts.view[parts.fit].numpy()
    assert split.stats["mean"].item() == pytest.approx(fit_windows.mean(), abs=1e-5)


def test_windowed_model_decides_per_recording(recordings):
    out = recordings / "cnn1d"
    result = train_fold(recordings / "samples.csv", recordings / "raw.h5", "2",
                        _spec("cnn1d", {"channels": [8, 8], "kernel": 5, "padding": 2, "pool": 2}, WINDOWS), out)
    predictions = pd.read_csv(out / "predictions.csv")
    held_out = {f"r{i:02d}" for i in range(60) if i // 3 % 3 == 1}
    assert set(predictions["id"]) == held_out and len(predictions) == len(held_out)  # one row per recording
    assert np.allclose(predictions.filter(like="p_").sum(axis=1), 1.0, atol=1e-5)
    assert result["test_uar"] >= 0.9
    checkpoint = load_checkpoint(out / "checkpoint.pt")
    assert checkpoint["model_args"]["n_times"] == 50
    assert checkpoint["windows"] == {"length": 50, "hop": 25, "eval_hop": 50, "aggregate": "log_mean",
                                     "random_offset": True}
