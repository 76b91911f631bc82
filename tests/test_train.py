"""One fold's training: learns a separable task, is deterministic, and its checkpoint rebuilds the model."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.metrics import balanced_accuracy_score

from deepself.config import validate_config
from deepself.errors import DeepselfError
from deepself.io.store import create_store, open_store
from deepself.models import create_model
from deepself.inference import normalize
from deepself.training.fold import train_fold

TRAIN_DEFAULTS = validate_config({"experiment": "t", "data": {"adapter": "digits"}, "features": {"f": {"kind": "raw"}},
                                  "models": {"m": {"arch": "fnn", "feature": "f"}}})["train"]


def _write_maps(path, shape, band, seed):
    """60 maps of ``shape``, 3 classes (sample i is class i % 3), class c bright in bins [band c, band (c + 1))."""
    rng = np.random.default_rng(seed)
    n, labels = 60, np.arange(60) % 3
    x = rng.normal(size=(n, *shape)).astype(np.float32)
    for i, c in enumerate(labels):
        x[i, :, band * c : band * c + band] += 3.0
    ids = [f"s{i:02d}" for i in range(n)]
    with create_store(path, n, x.shape[1:], {"kind": "signal", "layout": "CFT"}) as w:
        w.write(ids, x)
    return ids, labels


@pytest.fixture
def task(tmp_path):
    """60 maps (2 channels x 8 bins x 12 frames), 3 classes, each class bright in its own band; 3 folds."""
    ids, labels = _write_maps(tmp_path / "maps.h5", (2, 8, 12), band=2, seed=0)
    n = len(ids)
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
    _assert_dev_predictions_are_the_kept_epochs(task / arch, result, history, preds)


def _assert_dev_predictions_are_the_kept_epochs(out_dir, result, history, preds):
    """``dev_predictions.csv``: predictions.csv's columns, the development split's samples, each half's
    probabilities from an epoch of the training (cross-fitted: :func:`deepself.training.fold.cross_fitted`), with the
    log-loss and mean top probability that the summary reports."""
    from sklearn.metrics import balanced_accuracy_score, log_loss

    dev = pd.read_csv(out_dir / "dev_predictions.csv", dtype={"fold": str})
    assert list(dev.columns) == list(preds.columns) and len(dev) == result["n_dev"] == result["n_dev_predictions"]
    assert not set(dev["id"]) & set(preds["id"]) and (dev["fold"] == result["fold"]).all()
    proba = dev.filter(like="p_").to_numpy()
    proba /= proba.sum(axis=1, keepdims=True)  # float32 probabilities, as written
    labels = [c[2:] for c in dev.filter(like="p_").columns]
    y = np.array([labels.index(label) for label in dev["label"]])
    assert balanced_accuracy_score(y, proba.argmax(1)) <= history["dev_uar"].max() + 1e-9  # no better than chosen
    assert result["dev_log_loss"] == pytest.approx(log_loss(y, proba, labels=range(len(labels))), abs=1e-5)
    assert result["dev_mean_top_probability"] == pytest.approx(proba.max(1).mean())
    assert result["test_mean_top_probability"] == pytest.approx(preds.filter(like="p_").to_numpy().max(1).mean())


def test_without_a_development_split_dev_predictions_has_the_header_alone(task):
    spec = {**_spec("fnn", epochs=2), "dev_fraction": 0.0}
    result = train_fold(task / "samples.csv", task / "maps.h5", "1", spec, task / "nodev")
    dev = pd.read_csv(task / "nodev" / "dev_predictions.csv")
    assert list(dev.columns) == ["id", "fold", "label", "pred", "p_c0", "p_c1", "p_c2"] and len(dev) == 0
    assert result["n_dev"] == 0 and result["dev_log_loss"] is None and result["test_log_loss"] > 0


def test_same_seed_same_predictions(task):
    a = train_fold(task / "samples.csv", task / "maps.h5", "1", _spec("cnn2d", epochs=3), task / "a")
    b = train_fold(task / "samples.csv", task / "maps.h5", "1", _spec("cnn2d", epochs=3), task / "b")
    train_fold(task / "samples.csv", task / "maps.h5", "1", _spec("cnn2d", epochs=3, seed=1), task / "c")
    pa, pb, pc = (pd.read_csv(task / d / "predictions.csv") for d in "abc")
    pd.testing.assert_frame_equal(pa, pb)
    assert a["dev_uar"] == b["dev_uar"]
    assert not np.allclose(pa.filter(like="p_").to_numpy(), pc.filter(like="p_").to_numpy())


def _checkpoint_proba(ckpt, store_path, ids):
    """Class probabilities of the stored inputs ``ids`` by the model rebuilt from ``ckpt``."""
    model = create_model(ckpt["model"], **ckpt["model_args"])
    model.load_state_dict(ckpt["state_dict"])
    model.eval()
    with open_store(store_path) as store:
        x = torch.from_numpy(store.read(list(ids)))
    with torch.no_grad():
        return torch.softmax(model(normalize(x, ckpt["normalize"])), 1).numpy()


def _assert_checkpoint_predicts_the_fold(ckpt, out_dir, store_path):
    """The model rebuilt from ``ckpt`` gives the probabilities of ``out_dir/predictions.csv`` from the stored inputs."""
    preds = pd.read_csv(out_dir / "predictions.csv")
    np.testing.assert_allclose(_checkpoint_proba(ckpt, store_path, preds["id"]), preds.filter(like="p_").to_numpy(),
                               atol=1e-5)


def test_checkpoint_rebuilds_the_model(task):
    train_fold(task / "samples.csv", task / "maps.h5", "3", _spec("cnn2d", epochs=2), task / "m")
    ckpt = torch.load(task / "m" / "checkpoint.pt", weights_only=True)
    assert ckpt["classes"] == ["c0", "c1", "c2"]
    _assert_checkpoint_predicts_the_fold(ckpt, task / "m", task / "maps.h5")
    summary = json.loads((task / "m" / "summary.json").read_text())
    assert summary["best_epoch"] == ckpt["best_epoch"]


def test_early_stopping_and_schedules(task):
    spec = _spec("fnn", epochs=40, patience=2, scheduler="step", step_size=1, gamma=0.5, lr=0.05,
                 class_weights=True, grad_clip=1.0, optimizer="sgd", nesterov=True)
    result = train_fold(task / "samples.csv", task / "maps.h5", "1", spec, task / "es")
    history = pd.read_csv(task / "es" / "history.csv")
    assert result["epochs_run"] == len(history) < 40
    best = int(history["dev_uar"].idxmax())
    assert len(history) - 1 - best == 2, "stops exactly `patience` epochs after the best"
    np.testing.assert_allclose(history["lr"], 0.05 * 0.5 ** np.arange(len(history)))


def test_augmentation_changes_training_not_the_data_it_scores(task):
    spec = _spec("cnn2d", epochs=3, augment={"specaugment": {"freq_masks": 1, "freq_width": 2, "time_masks": 1,
                                                              "time_width": 3, }, "mixup": 0.4, "shift": 0.0,
                                              "gain_db": 0.0, "flip": False, "crop_pad": 0})
    plain = train_fold(task / "samples.csv", task / "maps.h5", "1", _spec("cnn2d", epochs=3), task / "plain")
    augmented = train_fold(task / "samples.csv", task / "maps.h5", "1", spec, task / "aug")
    assert augmented["n_dev"] == plain["n_dev"] and augmented["n_test"] == plain["n_test"]
    h_plain, h_aug = pd.read_csv(task / "plain" / "history.csv"), pd.read_csv(task / "aug" / "history.csv")
    assert not np.allclose(h_plain["train_loss"], h_aug["train_loss"])
    # the kept weights score the stored, unaugmented inputs: the held-out fold's probabilities, and the
    # development split's log-loss and UAR of the kept epoch as the history recorded them
    ckpt = torch.load(task / "aug" / "checkpoint.pt", weights_only=True)
    _assert_checkpoint_predicts_the_fold(ckpt, task / "aug", task / "maps.h5")
    dev = pd.read_csv(task / "aug" / "dev_predictions.csv")
    proba, y = _checkpoint_proba(ckpt, task / "maps.h5", dev["id"]), dev["label"].map(ckpt["classes"].index).to_numpy()
    kept = h_aug.iloc[ckpt["best_epoch"] - 1]
    assert kept["dev_loss"] == pytest.approx(-np.log(proba[np.arange(len(y)), y]).mean(), rel=1e-5)
    assert kept["dev_uar"] == pytest.approx(balanced_accuracy_score(y, proba.argmax(1)))


def resumable_job(tmp_path, n: int, spec: dict, resume_every_s: str):
    """A separable task of ``n`` maps and a ``run(out_dir, stop_after_epoch, sig)`` of `deepself train` on
    fold 1 in a child process, sent ``sig`` once its log shows that epoch; returns (exit code, stderr)."""
    import os
    import subprocess
    import sys
    import time

    rng = np.random.default_rng(1)
    labels = np.arange(n) % 4
    x = rng.normal(size=(n, 1, 16, 48)).astype(np.float32)
    for i, c in enumerate(labels):
        x[i, 0, 4 * c : 4 * c + 4] += 1.0
    ids = [f"s{i:03d}" for i in range(n)]
    with create_store(tmp_path / "maps.h5", n, x.shape[1:], {"kind": "signal", "layout": "CFT"}) as w:
        w.write(ids, x)
    pd.DataFrame({"id": ids, "label": labels.astype(str), "fold": [str(i // 4 % 2 + 1) for i in range(n)]}).to_csv(
        tmp_path / "samples.csv", index=False)

    def run(out_dir, stop_after_epoch=None, sig=None):
        log = out_dir / "train.log"
        cmd = [sys.executable, "-m", "deepself", "--log", str(log), "train", "--sheet", str(tmp_path / "samples.csv"),
               "--input", str(tmp_path / "maps.h5"), "--fold", "1", "--spec", json.dumps(spec), "--threads", "1",
               "--resume-every-s", resume_every_s, "--out-dir", str(out_dir)]
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        if stop_after_epoch is not None:
            deadline = time.time() + 300
            while time.time() < deadline and proc.poll() is None:
                if log.exists() and f"epoch {stop_after_epoch:3d}/" in log.read_text():
                    os.kill(proc.pid, sig)
                    break
                time.sleep(0.02)
        _, err = proc.communicate(timeout=300)
        return proc.returncode, err.decode()

    return run


def interrupted_and_rerun(tmp_path, n: int, spec: dict, resume_every_s: str, sig, after_epoch: int):
    """Train fold 1 of :func:`resumable_job`'s task whole, and again sent ``sig`` after epoch ``after_epoch``,
    then rerun: the interrupted run left ``resume.pt`` and no predictions, and the rerun resumed, removed
    ``resume.pt`` and wrote what the whole run wrote. Returns the interrupted run's (exit code, stderr)."""
    job = resumable_job(tmp_path, n, spec, resume_every_s)
    whole, stopped = tmp_path / "whole", tmp_path / "stopped"
    code, err = job(whole)
    assert code == 0, err
    interrupted = job(stopped, after_epoch, sig)
    assert interrupted[0] != 0, "the job finished before it was interrupted"
    assert (stopped / "resume.pt").exists()
    assert not (stopped / "predictions.csv").exists()
    code, err = job(stopped)
    assert code == 0, err
    assert "resuming after epoch" in (stopped / "train.log").read_text()
    assert not (stopped / "resume.pt").exists()
    for name in ("predictions.csv", "dev_predictions.csv"):  # a resumed job writes both, as a whole run does
        pd.testing.assert_frame_equal(pd.read_csv(whole / name), pd.read_csv(stopped / name))
    timing = ["seconds", "samples_per_s"]
    pd.testing.assert_frame_equal(pd.read_csv(whole / "history.csv").drop(columns=timing),
                                  pd.read_csv(stopped / "history.csv").drop(columns=timing))
    return interrupted


def test_killed_job_resumes_to_the_same_predictions(tmp_path):
    """kill -9 in the middle of training, run again: it continues and ends as an uninterrupted run."""
    import signal

    spec = _spec("cnn2d", epochs=8, batch_size=16, scheduler="cosine",
                 augment={**TRAIN_DEFAULTS["augment"], "mixup": 0.2})
    spec["args"] = {"channels": [16, 16], "pool": [2, 2], "dropout": 0.3}
    code, _ = interrupted_and_rerun(tmp_path, 400, spec, "0", signal.SIGKILL, after_epoch=3)
    assert code == -signal.SIGKILL, "the job was killed before it could finish"


def _probe_spec(**train):
    # PANNs cnn6 from a partial checkpoint (conv blocks only, as `deepself weights import panns_aisfx` writes)
    return {"name": "pann", "arch": "panns", "feature": "maps", "classes": None, "dev_fraction": 0.25, "cv_seed": 0,
            "args": {"name": "cnn6", "weights": None, "train_mode": "probe"},
            "train": {**TRAIN_DEFAULTS, "epochs": 15, "batch_size": 8, "lr": 0.01, **train}}


@pytest.fixture
def partial_cnn6(task):
    """A PANNs cnn6 checkpoint holding conv blocks only (bn0 and fc1 new), and a 16 x 16 map task."""
    _write_maps(task / "maps16.h5", (1, 16, 16), band=5, seed=1)
    torch.manual_seed(3)
    full = create_model("panns", 1, 16, 16, 3, name="cnn6").state_dict()
    path = task / "conv_blocks.pth"
    torch.save({"model": {k: v for k, v in full.items() if k.startswith("conv_block")}}, path)
    return task, path, {k: v for k, v in full.items() if k.startswith("conv_block")}


def test_probe_fits_the_classifier_on_embeddings_and_keeps_the_backbone(partial_cnn6):
    task, weights, blocks = partial_cnn6
    spec = _probe_spec()
    spec["args"].update(weights=str(weights), pooling="aisfx")
    result = train_fold(task / "samples.csv", task / "maps16.h5", "2", spec, task / "probe")
    assert result["test_uar"] >= 0.9
    ckpt = torch.load(task / "probe" / "checkpoint.pt", weights_only=True)
    for key, value in blocks.items():  # the pretrained blocks (and their batch-norm statistics) did not move
        torch.testing.assert_close(ckpt["state_dict"][key], value, rtol=0, atol=0)
    fresh = create_model("panns", **ckpt["model_args"]).state_dict()
    assert not torch.equal(ckpt["state_dict"]["fc_audioset.weight"], fresh["fc_audioset.weight"])
    history = pd.read_csv(task / "probe" / "history.csv")  # one row per C, the best cross-validated UAR chosen
    assert len(history) == result["epochs_run"] >= 2 and result["dev_uar"] == history["dev_uar"].max()
    # no development split: fitted on the whole training part, its out-of-fold predictions in dev_predictions.csv
    dev, preds = pd.read_csv(task / "probe" / "dev_predictions.csv"), pd.read_csv(task / "probe" / "predictions.csv")
    assert result["n_dev"] == 0 and result["n_train"] == len(dev) == 60 - len(preds)
    assert not set(dev["id"]) & set(preds["id"]) and result["head"]["C"] == history["C"][result["best_epoch"] - 1]
    # the whole network, rebuilt from the checkpoint, gives the fold's predictions from raw maps
    _assert_checkpoint_predicts_the_fold(ckpt, task / "probe", task / "maps16.h5")


def test_probe_refuses_input_augmentation(partial_cnn6):
    task, weights, _ = partial_cnn6
    spec = _probe_spec(augment={**TRAIN_DEFAULTS["augment"], "specaugment": {"freq_masks": 1, "freq_width": 2,
                                                                              "time_masks": 1, "time_width": 2}})
    with pytest.raises(DeepselfError, match=r"train.augment.specaugment \(model pann\): train_mode probe"):
        train_fold(task / "samples.csv", task / "maps16.h5", "2", spec, task / "probe")
    assert not (task / "probe" / "checkpoint.pt").exists()


def test_cross_fitted_development_predictions_come_from_the_epoch_the_other_half_chooses():
    """Each half's rows are the probabilities of the epoch that scores best on the other half, never its own."""
    from deepself.training.fold import cross_fitted, dev_halves

    y = np.array([0, 0, 0, 0, 0, 1, 1, 1, 1])
    half = dev_halves(y, 2, seed=3)
    assert abs(int(half.sum()) - int((~half).sum())) <= 1
    assert all(abs(int((half & (y == c)).sum()) - int((~half & (y == c)).sum())) <= 1 for c in (0, 1))
    right, wrong = np.eye(2)[y], np.eye(2)[1 - y]
    # epoch 1 is right on the first half only, epoch 2 on the second only: the kept epoch scores 0.5 or so on
    # the whole split, and each half, predicted by the epoch the other half chooses, is wrong everywhere
    first = np.where(half[:, None], right, wrong)
    second = np.where(half[:, None], wrong, right)
    out = cross_fitted([torch.tensor(first, dtype=torch.float32), torch.tensor(second, dtype=torch.float32)], y, 2, 3)
    np.testing.assert_array_equal(out, wrong)
    # an epoch right everywhere is chosen by both halves; a tie goes to the earlier epoch, as the kept one does
    out = cross_fitted([torch.tensor(wrong, dtype=torch.float32), torch.tensor(right, dtype=torch.float32)], y, 2, 3)
    np.testing.assert_array_equal(out, right)
    out = cross_fitted([torch.tensor(first, dtype=torch.float32), torch.tensor(right, dtype=torch.float32)], y, 2, 3)
    np.testing.assert_array_equal(out, np.where(half[:, None], right, wrong))
    assert cross_fitted([], y, 2, 3) is None and cross_fitted([torch.tensor(right[:1])], y[:1], 2, 3) is None
