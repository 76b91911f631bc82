"""The trainer's GPU options run on the CPU, and resume.pt is written when it should be and only then.

No machine that runs these tests has a GPU, so ``precision: bf16`` (CPU autocast), ``channels_last``,
``compile`` and the whole-fold-on-the-device path (the CPU as the device) are proven here: each
trains a fold, its predictions are finite, and the checkpoint rebuilt through the inference module
reproduces them with the same forward context.
"""

from __future__ import annotations

import logging
import signal

import numpy as np
import pandas as pd
import pytest
import torch

from deepself.errors import DeepselfError
from deepself.inference import Forward, build_model, load_checkpoint, predict_proba
from deepself.io.store import create_store, open_store
from deepself.training.data import TrainingData
from deepself.training.fold import train_fold, train_fold_on

from test_train import TRAIN_DEFAULTS, _spec, _write_maps, interrupted_and_rerun, task  # noqa: F401 (task is a fixture)


def _reproduce(out_dir, store_path):
    """Predictions of the rebuilt checkpoint with the fold's own forward context, and those it wrote."""
    ckpt = load_checkpoint(out_dir / "checkpoint.pt")
    model = build_model(ckpt, out_dir / "checkpoint.pt")
    preds = pd.read_csv(out_dir / "predictions.csv")
    with open_store(store_path) as store:
        x = torch.from_numpy(store.read(list(preds["id"])))
    forward = Forward.for_training(ckpt["train"], ckpt["normalize"], x.ndim - 1)
    forward.prepare(model)
    return predict_proba(model, x, forward, 16).numpy(), preds.filter(like="p_").to_numpy(), forward


@pytest.mark.parametrize("option", [
    pytest.param({"precision": "bf16", "channels_last": False}, id="bf16"),
    pytest.param({"channels_last": True}, id="channels_last"),
    pytest.param({"precision": "bf16", "channels_last": True}, id="bf16_channels_last"),
    pytest.param({"compile": True, "channels_last": False}, id="compile"),
])
def test_gpu_option_trains_on_the_cpu(task, option):
    spec = _spec("cnn2d", epochs=2, device="cpu", **option)
    result = train_fold(task / "samples.csv", task / "maps.h5", "2", spec, task / "m")
    assert result["precision"] == ("bf16" if option.get("precision") == "bf16" else "fp32")
    assert result["device"] == "cpu"
    reproduced, written, forward = _reproduce(task / "m", task / "maps.h5")
    assert np.isfinite(written).all() and np.allclose(written.sum(1), 1, atol=1e-4)
    assert forward.channels_last == bool(option.get("channels_last"))
    np.testing.assert_allclose(reproduced, written, atol=1e-5)


def test_whole_fold_on_the_device_with_the_cpu_as_device(task):
    """Inputs and labels live where the model does, and a second fold of the job reuses them."""
    spec = _spec("fnn", epochs=2, device="cpu")
    data = TrainingData(task / "samples.csv", task / "maps.h5", None)
    first = train_fold_on(data, "1", spec, task / "f1")
    x_before = data.x
    second = train_fold_on(data, "2", spec, task / "f2")
    assert data.x is x_before and data.x.device == torch.device("cpu")
    # the job that read the data once gives what a job per fold gives
    alone = train_fold(task / "samples.csv", task / "maps.h5", "2", spec, task / "alone")
    folds = pd.read_csv(task / "samples.csv", dtype=str)["fold"]
    assert (first["n_test"], second["n_test"]) == ((folds == "1").sum(), (folds == "2").sum())
    pd.testing.assert_frame_equal(pd.read_csv(task / "f2" / "predictions.csv"),
                                  pd.read_csv(task / "alone" / "predictions.csv"))
    assert alone["test_uar"] == second["test_uar"]


def test_resume_is_written_on_its_interval_only(task, caplog):
    spec = _spec("fnn", epochs=4)
    with caplog.at_level(logging.INFO, logger="deepself.training"):
        train_fold(task / "samples.csv", task / "maps.h5", "1", spec, task / "rare", resume_every_s=3600)
    assert not [r for r in caplog.records if "wrote resume.pt" in r.getMessage()]
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="deepself.training"):
        train_fold(task / "samples.csv", task / "maps.h5", "1", spec, task / "kept", resume_every_s=3600,
                   keep_resume=True)
    writes = [r.getMessage() for r in caplog.records if "wrote resume.pt" in r.getMessage()]
    assert writes == [writes[0]] and "after epoch 4 " in writes[0], "once, after the last epoch"
    assert (task / "kept" / "resume.pt").exists()
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="deepself.training"):
        train_fold(task / "samples.csv", task / "maps.h5", "1", spec, task / "every", resume_every_s=0)
    assert len([r for r in caplog.records if "wrote resume.pt" in r.getMessage()]) == 4
    assert not (task / "every" / "resume.pt").exists(), "removed once the fold's outputs are written"


def test_resume_of_other_data_is_not_continued(task, caplog):
    """A resume.pt left by a run on data that changed since (same ids, shapes and spec) starts over."""
    spec = _spec("fnn", epochs=3)
    train_fold(task / "samples.csv", task / "maps.h5", "1", spec, task / "a", resume_every_s=0, keep_resume=True)
    with caplog.at_level(logging.INFO, logger="deepself.training"):
        train_fold(task / "samples.csv", task / "maps.h5", "1", spec, task / "a", resume_every_s=0)
    assert any("resuming after epoch 3" in r.getMessage() for r in caplog.records)

    train_fold(task / "samples.csv", task / "maps.h5", "1", spec, task / "b", resume_every_s=0, keep_resume=True)
    _write_maps(task / "maps.h5", (2, 8, 12), band=2, seed=7)  # same ids and shape, other content
    caplog.clear()
    with caplog.at_level(logging.INFO, logger="deepself.training"):
        train_fold(task / "samples.csv", task / "maps.h5", "1", spec, task / "b", resume_every_s=0)
    messages = [r.getMessage() for r in caplog.records]
    assert any("ignoring" in m and "other data" in m for m in messages)
    assert not any("resuming" in m for m in messages)
    assert len(pd.read_csv(task / "b" / "history.csv")) == 3


def test_sigterm_writes_resume_and_the_rerun_ends_as_an_uninterrupted_run(tmp_path):
    """SIGTERM (SLURM's warning before pre-emption) mid-training: resume.pt is written although its
    interval is far off, the job exits non-zero, and the rerun continues to the uninterrupted result."""
    spec = _spec("cnn2d", epochs=6, batch_size=16, scheduler="cosine")
    spec["args"] = {"channels": [16, 16], "pool": [2, 2], "dropout": 0.3}
    code, err = interrupted_and_rerun(tmp_path, 240, spec, "3600", signal.SIGTERM, after_epoch=2)
    assert code != 0 and "stopped by SIGTERM" in err


@pytest.mark.parametrize("normalize, reused", [("none", True), ("feature", False)])
def test_a_probe_embeds_once_per_job_when_folds_share_the_embeddings(task, caplog, normalize, reused):
    """Folds trained in one job reuse a frozen backbone's embeddings unless the fold's normalisation
    changes the input; either way each fold's predictions are those of a job of its own."""
    _write_maps(task / "maps16.h5", (1, 16, 16), band=5, seed=1)
    spec = {"name": "pann", "arch": "panns", "feature": "maps", "classes": None, "dev_fraction": 0.25,
            "cv_seed": 0, "args": {"name": "cnn6", "weights": None, "train_mode": "probe", "pooling": "aisfx"},
            "train": {**TRAIN_DEFAULTS, "normalize": normalize}}
    data = TrainingData(task / "samples.csv", task / "maps16.h5", None)
    with caplog.at_level(logging.INFO, logger="deepself.training"):
        for fold in ("1", "2"):
            train_fold_on(data, fold, spec, task / f"job{fold}")
    assert any("reused" in r.getMessage() for r in caplog.records) == reused
    train_fold(task / "samples.csv", task / "maps16.h5", "2", spec, task / "alone")
    np.testing.assert_allclose(pd.read_csv(task / "job2" / "predictions.csv").filter(like="p_").to_numpy(),
                               pd.read_csv(task / "alone" / "predictions.csv").filter(like="p_").to_numpy(),
                               atol=1e-6)


def test_no_development_split_trains_every_epoch_and_keeps_the_last(task):
    """cv.dev_fraction 0: every training sample is fitted, all epochs run, the last epoch is kept."""
    spec = {**_spec("fnn", epochs=4), "dev_fraction": 0.0}
    result = train_fold(task / "samples.csv", task / "maps.h5", "1", spec, task / "nodev")
    folds = pd.read_csv(task / "samples.csv", dtype=str)["fold"]
    assert result["n_dev"] == 0 and result["n_train"] == (folds != "1").sum()
    assert result["epochs_run"] == result["best_epoch"] == 4
    history = pd.read_csv(task / "nodev" / "history.csv")
    assert history["dev_uar"].isna().all() and len(history) == 4
    assert np.isfinite(pd.read_csv(task / "nodev" / "predictions.csv").filter(like="p_").to_numpy()).all()
    _write_maps(task / "maps16.h5", (1, 16, 16), band=5, seed=1)
    # a probe sets nothing aside whatever dev_fraction says: its C is chosen by cross-validation
    probe_spec = {**spec, "arch": "panns", "args": {"name": "cnn6", "weights": None, "train_mode": "probe"}}
    probe = train_fold(task / "samples.csv", task / "maps16.h5", "1", probe_spec, task / "nodev_probe")
    assert probe["n_dev"] == 0 and probe["n_train"] == (folds != "1").sum()
    assert len(pd.read_csv(task / "nodev_probe" / "dev_predictions.csv")) == probe["n_train"]


def test_non_finite_probabilities_are_never_written(task):
    """A held-out sample whose input overflows the network: the fold stops naming it, writing nothing."""
    ids, _ = _write_maps(task / "maps.h5", (2, 8, 12), band=2, seed=0)
    with open_store(task / "maps.h5") as store:
        x = store.read()
    x[1] = 3e38  # s01 is in held-out fold 1
    with create_store(task / "huge.h5", len(ids), x.shape[1:], {"kind": "signal", "layout": "CFT"}) as w:
        w.write(ids, x)
    spec = _spec("fnn", epochs=1, normalize="none")
    with pytest.raises(DeepselfError, match=r"model fnn, fold 1: sample 's01' .* non-finite probabilities"):
        train_fold(task / "samples.csv", task / "huge.h5", "1", spec, task / "huge")
    assert not (task / "huge" / "predictions.csv").exists()
