"""Training on windows of recordings and MiniRocket as a probe: decisions per recording, nothing leaks."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch

from deepself.config import validate_config
from deepself.inference import load_checkpoint
from deepself.io.store import create_store
from deepself.training.data import TrainingData
from deepself.training.fold import train_fold

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
    ingest = validate_config({"experiment": "t", "data": {"sheet": "s.csv", "modalities": {"main": {"column": "path", "kind": "sensor",
                              "sample_rate": RATE}}}, "features": {"f": {"kind": "raw"}},
                              "models": {"m": {"arch": "fnn", "feature": "f"}}}
                             )["data"]["modalities"]["main"]
    meta = {"kind": "signal", "layout": "CT", "sample_rate": RATE, "modality": "main", "n_channels": 1,
            "n_samples": x.shape[-1], "ingest": ingest}  # as ingest writes it, so that predict can replay it
    with create_store(tmp_path / "raw.h5", n, x.shape[1:], meta) as w:
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
    dev = pd.read_csv(out / "dev_predictions.csv")  # the development recordings at the kept epoch, one row each
    assert len(dev) == result["n_dev"] == dev["id"].nunique() and not set(dev["id"]) & held_out
    assert list(dev.columns) == list(predictions.columns)


@pytest.mark.parametrize("arch, windows", [("minirocket", None), ("minirocket", WINDOWS), ("multirocket", WINDOWS)])
def test_rocket_fits_its_transform_and_a_regression(recordings, arch, windows):
    out = recordings / arch
    result = train_fold(recordings / "samples.csv", recordings / "raw.h5", "1",
                        _spec(arch, {"n_kernels": 840}, windows, augment=TRAIN_DEFAULTS["augment"]), out)
    assert result["test_uar"] >= 0.9
    checkpoint = load_checkpoint(out / "checkpoint.pt")
    assert checkpoint["state_dict"]["biases"].abs().sum() > 0  # fitted, and kept in the checkpoint
    assert len(pd.read_csv(out / "predictions.csv")) == result["n_test"] == 21
    # no development split: the head is fitted on all 39 training recordings, cross-validated over them,
    # and their out-of-sample predictions are dev_predictions.csv, one row per recording
    dev = pd.read_csv(out / "dev_predictions.csv")
    assert result["n_dev"] == 0 and result["n_train"] == len(dev) == dev["id"].nunique() == 39
    assert result["head"] == checkpoint["head"] and float(checkpoint["state_dict"]["head.temperature"]) == \
        pytest.approx(result["head"]["temperature"])
    assert result["head"]["cv"].startswith("leave-one-out" if windows is None else "5-fold over 39 recordings")
    assert 0 < result["dev_mean_top_probability"] <= 1 and result["dev_log_loss"] > 0


def test_predict_windows_a_recording_of_any_length_as_training_did(recordings):
    from deepself.errors import DeepselfError
    from deepself.deploy.predict import predict

    out = recordings / "cnn1d"
    train_fold(recordings / "samples.csv", recordings / "raw.h5", "2",
               _spec("cnn1d", {"channels": [8], "kernel": 5, "padding": 2, "pool": 2}, WINDOWS, epochs=2), out)
    t = np.arange(int(4.3 * RATE)) / RATE  # longer than the training recordings
    np.savetxt(recordings / "long.txt", np.sin(2 * np.pi * 10 * t))
    np.savetxt(recordings / "short.txt", np.sin(2 * np.pi * 10 * t[:30]))  # 0.3 s: less than one window
    frame = predict(out / "checkpoint.pt", pd.DataFrame({"path": [str(recordings / "long.txt")]}))
    assert len(frame) == 1 and np.isclose(frame.filter(like="p_").to_numpy().sum(), 1.0)
    with pytest.raises(DeepselfError, match="short.txt: 30 frames, shorter than one window of 50"):
        predict(out / "checkpoint.pt", pd.DataFrame({"path": [str(recordings / "short.txt")]}))


def test_export_bundle_and_its_documented_windowing_reproduce_predict(recordings, tmp_path):
    """A consumer with the bundle alone (numpy, scipy, onnxruntime) decides a long recording as ``predict`` does."""
    import json

    import onnxruntime

    from deepself.errors import DeepselfError
    from deepself.deploy.export import export_checkpoint
    from deepself.deploy.predict import predict

    out = recordings / "cnn1d"
    windows = {**WINDOWS, "eval_hop_s": 0.3}  # 430 samples: windows at 0, 30, ..., 360, then one at 380
    train_fold(recordings / "samples.csv", recordings / "raw.h5", "2",
               _spec("cnn1d", {"channels": [8], "kernel": 5, "padding": 2, "pool": 2}, windows, epochs=2), out)
    t = np.arange(430) / RATE
    np.savetxt(recordings / "long.txt", 0.5 * np.sin(2 * np.pi * 10 * t) + 0.1 * np.cos(2 * np.pi * 3 * t))
    np.savetxt(recordings / "short.txt", np.sin(2 * np.pi * 10 * t[:49]))  # one sample short of a window
    bundle = tmp_path / "bundle"
    export_checkpoint(out / "checkpoint.pt", bundle, check_files=[str(recordings / "long.txt")])
    spec = json.loads((bundle / "preprocessing.json").read_text())
    assert spec["windows"]["length"] == 50 and spec["windows"]["eval_hop"] == 30
    assert spec["windows"]["length_s"] == pytest.approx(0.5) and spec["windows"]["aggregate"] == "log_mean"
    assert spec["model"]["input"]["shape"] == ["batch", 1, 50]
    assert not any("crop or zero-pad" in step for step in spec["steps"])  # a recording keeps its length

    x = np.loadtxt(recordings / "long.txt", dtype=np.float32)[None]  # no filter, no feature map in this model
    w = spec["windows"]
    first = list(range(0, x.shape[-1] - w["length"] + 1, w["eval_hop"]))
    if first[-1] + w["length"] < x.shape[-1]:
        first.append(x.shape[-1] - w["length"])
    assert first[-2:] == [360, 380]
    session = onnxruntime.InferenceSession(str(bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    proba = session.run(["probabilities"], {"input": np.stack([x[:, s : s + w["length"]] for s in first])})[0]
    p = np.exp(np.log(np.maximum(proba, 1e-12)).mean(axis=0))  # log_mean, as its formula says
    p /= p.sum()
    expected = predict(out / "checkpoint.pt", pd.DataFrame({"path": [str(recordings / "long.txt")]}))
    np.testing.assert_allclose(p, expected.filter(like="p_").to_numpy()[0], atol=1e-4, rtol=0)
    with pytest.raises(DeepselfError, match="short.txt: 49 frames, shorter than one window of 50"):
        export_checkpoint(out / "checkpoint.pt", tmp_path / "other", check_files=[str(recordings / "short.txt")])
    assert not (tmp_path / "other").exists()


def test_probe_chooses_c_on_recording_level_out_of_fold_decisions():
    """With windows, every C's UAR is that of the recordings' aggregated out-of-fold decisions, the folds
    splitting recordings (all windows of one on one side)."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.preprocessing import StandardScaler

    from deepself.training import probe
    from deepself.scoring.metrics import uar
    from deepself.training.windows import aggregate

    rng = np.random.default_rng(1)
    n_recordings, per = 30, 4
    label = np.arange(n_recordings) % 3
    recording = np.repeat(np.arange(n_recordings), per)
    # windows of one recording share its class's centre, blurred enough that single windows often err
    x = rng.normal(size=(len(recording), 6)) * 2.0 + np.eye(3, 6)[label[recording]]
    y = label[recording]
    part = probe.Part(np.arange(len(recording)), recording, label, aggregate="mean")
    grid = (0.01, 1.0)
    history, best, proba = probe.fit(torch.nn.Linear(6, 3), torch.from_numpy(x).float(), part, 3, c_grid=grid,
                                     seed=0)
    folds = part.folds(5, seed=0)
    window_level = []
    for row, c in zip(history, grid, strict=True):
        window_proba = np.zeros((len(y), 3))
        for train, test in folds:
            assert not set(recording[train]) & set(recording[test])
            scaler = StandardScaler().fit(x[train])
            window_proba[test] = LogisticRegression(C=c, max_iter=5000).fit(scaler.transform(x[train]), y[train]) \
                .predict_proba(scaler.transform(x[test]))
        order, per_recording = aggregate(window_proba, recording, "mean")
        assert np.array_equal(order, np.arange(n_recordings))
        assert row["dev_uar"] == pytest.approx(uar(label, per_recording.argmax(1), 3))
        window_level.append(uar(y, window_proba.argmax(1), 3))
    assert [row["dev_uar"] for row in history] != pytest.approx(window_level)  # the two levels differ on this data
    assert best["dev_uar"] == max(row["dev_uar"] for row in history) and proba.shape == (n_recordings, 3)
