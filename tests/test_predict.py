"""deepself predict: new files through the stored ingest, filter, feature and normalisation steps.

A small experiment is made the way the workflow makes one (sheet, ingest, band-pass, features, one
training job per model and fold, all through deepself's own functions) from wav and csv files the
test writes. Predicting the held-out files of a fold with that fold's checkpoint must give what
the training job wrote into predictions.csv.
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
from PIL import Image

from deepself.config import validate_config
from deepself.errors import DeepselfError
from deepself.scoring.fusion import late_fusion
from deepself.io.ingest import ingest
from deepself.io.sheet import build_sheet, read_sheet, write_sheet
from deepself.io.store import open_store
from deepself.inference import load_checkpoint
from deepself.deploy.predict import add_parser, predict, samples_from
from deepself.deploy.replay import model_input
from deepself.signal.stages import feature_store, filter_store
from deepself.training.fold import train_fold

REPO = Path(__file__).resolve().parents[1]
SR = 4000
FOLDS = ("1", "2", "3")


def run_experiment(config: dict) -> Path:
    """The workflow's stages as library calls (see workflow/rules/*.smk); returns results/<experiment>."""
    C = validate_config(config)
    R = Path(C["results"]) / C["experiment"]
    write_sheet(build_sheet(C["data"], C["cv"], R / "data"), R / "samples.csv")
    stores = {}
    for modality, spec in C["data"]["modalities"].items():
        ingest(R / "samples.csv", modality, spec, R / "raw" / f"{modality}.h5")
        stores[modality] = R / "raw" / f"{modality}.h5"
        if spec["filter"]:
            stores[modality] = R / "filtered" / f"{modality}.h5"
            filter_store(R / "raw" / f"{modality}.h5", stores[modality], spec["filter"]["band"],
                         spec["filter"]["order"], key=f"data.modalities.{modality}.filter")
    for name, feature in C["features"].items():
        if feature["kind"] not in ("raw", "image"):
            feature_store(stores[feature["modality"]], R / "features" / f"{name}.h5", name, feature)
    for name, spec in C["models"].items():
        feature = C["features"][spec["feature"]]
        store = (stores[feature["modality"]] if feature["kind"] in ("raw", "image")
                 else R / "features" / f"{spec['feature']}.h5")
        job = {"name": name, **spec, "classes": C["data"]["classes"], "dev_fraction": C["cv"]["dev_fraction"],
               "cv_seed": C["cv"]["seed"]}
        for fold in FOLDS:
            train_fold(R / "samples.csv", store, fold, job, R / "models" / name / f"fold{fold}")
    (R / "config.json").write_text(json.dumps(C, indent=2))
    return R


@pytest.fixture(scope="module")
def experiment(tmp_path_factory) -> Path:
    """30 samples, 3 classes: a wav (tone of the class's pitch plus noise, 0.25-0.29 s) and a csv
    (2 motion channels at 50 Hz, offset by class) each; three models, two fusions."""
    root = tmp_path_factory.mktemp("predict")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(30):
        c = i % 3
        n = 1000 + 37 * (i % 5)  # unequal lengths: ingest pads to the longest, predict must too
        t = np.arange(n) / SR
        wave = 0.5 * np.sin(2 * np.pi * (300, 700, 1300)[c] * t) + 0.1 * rng.standard_normal(n)
        sf.write(root / f"a{i:02d}.wav", wave.astype(np.float32), SR, subtype="FLOAT")
        motion = rng.standard_normal((50, 2)) + c
        pd.DataFrame(motion, columns=["ax", "ay"]).to_csv(root / f"m{i:02d}.csv", index=False)
        rows.append({"id": f"s{i:02d}", "audio": f"a{i:02d}.wav", "motion": f"m{i:02d}.csv", "label": f"c{c}"})
    pd.DataFrame(rows).to_csv(root / "sheet.csv", index=False)
    config = {
        "experiment": "exp", "results": str(root / "results"),
        "data": {"adapter": "sheet", "sheet": str(root / "sheet.csv"),
                 "modalities": {"audio": {"column": "audio", "filter": {"band": [100, 1800]}},
                                "motion": {"column": "motion", "sample_rate": 50}}},
        "cv": {"folds": 3, "seed": 0},
        "features": {"wave": {"kind": "raw", "modality": "audio"},
                     "spec": {"kind": "spectrogram", "modality": "audio", "n_fft": 128, "hop_length": 64},
                     "move": {"kind": "raw", "modality": "motion"}},
        "train": {"epochs": 3, "batch_size": 8, "lr": 0.01},
        "models": {"fnn": {"arch": "fnn", "feature": "wave", "args": {"hidden": [16]}},
                   "cnn": {"arch": "cnn2d", "feature": "spec", "args": {"channels": [4, 8]}},
                   "motion": {"arch": "fnn", "feature": "move", "args": {"hidden": [8]}}},
        "fusions": {"sound": {"models": ["fnn", "cnn"], "method": "mean"},
                    "all": {"models": ["fnn", "cnn", "motion"], "method": "weighted"}},
    }
    return run_experiment(config)


def held_out(experiment: Path, fold: str, column: str) -> tuple[list[str], list[str]]:
    sheet = read_sheet(experiment / "samples.csv")
    part = sheet[sheet["fold"] == fold]
    return list(part["id"]), list(part[column])


def probabilities(frame: pd.DataFrame) -> np.ndarray:
    return frame.filter(like="p_").to_numpy(dtype=np.float64)


@pytest.mark.parametrize("model, column", [("fnn", "audio"), ("cnn", "audio"), ("motion", "motion")])
@pytest.mark.parametrize("fold", FOLDS)
def test_checkpoint_gives_the_held_out_predictions_of_training(experiment, model, column, fold):
    ids, files = held_out(experiment, fold, column)
    out = predict(experiment / "models" / model / f"fold{fold}" / "checkpoint.pt", pd.DataFrame({"path": files}))
    expected = pd.read_csv(experiment / "models" / model / f"fold{fold}" / "predictions.csv").set_index("id").loc[ids]
    assert list(out.columns) == ["id", "pred", "p_c0", "p_c1", "p_c2"]
    assert list(out["id"]) == files
    np.testing.assert_allclose(probabilities(out), probabilities(expected), atol=1e-5, rtol=0)
    assert list(out["pred"]) == list(expected["pred"])


def test_model_input_equals_the_stored_feature_map(experiment):
    """The replayed steps (read, pad, band-pass, spectrogram) give the training store's array."""
    checkpoint = load_checkpoint(experiment / "models" / "cnn" / "fold1" / "checkpoint.pt")
    ids, files = held_out(experiment, "1", "audio")
    with open_store(experiment / "features" / "spec.h5") as store:
        stored = store.read(ids)
    replayed = np.stack([model_input(f, checkpoint) for f in files])
    np.testing.assert_allclose(replayed, stored, atol=1e-4 * np.abs(stored).max())


def test_a_single_file(experiment):
    ids, files = held_out(experiment, "3", "audio")
    out = predict(experiment / "models" / "fnn" / "fold3" / "checkpoint.pt", pd.DataFrame({"path": files[-1:]}))
    expected = pd.read_csv(experiment / "models" / "fnn" / "fold3" / "predictions.csv").set_index("id").loc[ids[-1:]]
    assert len(out) == 1
    np.testing.assert_allclose(probabilities(out), probabilities(expected), atol=1e-5, rtol=0)


def _per_fold(experiment: Path, model: str, samples: pd.DataFrame) -> list[np.ndarray]:
    column = "path" if "path" in samples.columns else {"fnn": "audio", "cnn": "audio", "motion": "motion"}[model]
    files = pd.DataFrame({"path": samples[column]})
    return [probabilities(predict(experiment / "models" / model / f"fold{k}" / "checkpoint.pt", files))
            for k in FOLDS]


def test_experiment_averages_every_folds_model(experiment):
    _, files = held_out(experiment, "1", "audio")
    samples = pd.DataFrame({"path": files})
    out = predict(experiment, samples, model="cnn")
    np.testing.assert_allclose(probabilities(out), np.mean(_per_fold(experiment, "cnn", samples), axis=0), atol=1e-12)
    np.testing.assert_allclose(probabilities(out).sum(1), 1.0, atol=1e-6)


def test_mean_fusion_of_one_modality_takes_plain_files(experiment):
    _, files = held_out(experiment, "2", "audio")
    samples = pd.DataFrame({"path": files})
    out = predict(experiment, samples, fusion="sound")
    folds = zip(_per_fold(experiment, "fnn", samples), _per_fold(experiment, "cnn", samples), strict=True)
    expected = np.mean([(a + b) / 2 for a, b in folds], axis=0)
    np.testing.assert_allclose(probabilities(out), expected, atol=1e-12)


def test_weighted_fusion_over_modalities_reads_a_sheet(experiment, tmp_path):
    """Per fold, the models are weighted by the development UAR of their summary.json (what the fuse
    stage uses); the folds' fusions are then averaged."""
    sheet = pd.read_csv(experiment.parents[1] / "sheet.csv").head(7)
    sheet.drop(columns="label").to_csv(tmp_path / "new.csv", index=False)
    for name in ("audio", "motion"):  # the sheet's relative paths are relative to the sheet
        for f in sheet[name]:
            shutil.copy(experiment.parents[1] / f, tmp_path / f)
    samples, origin = samples_from([], str(tmp_path / "new.csv"))
    out = predict(experiment, samples, fusion="all", origin=origin)
    assert list(out.columns) == ["id", "pred", "p_c0", "p_c1", "p_c2"]
    assert list(out["id"]) == list(sheet["id"])
    per_model = {m: _per_fold(experiment, m, samples) for m in ("fnn", "cnn", "motion")}
    fused = []
    for k, fold in enumerate(FOLDS):
        weights = [json.loads((experiment / "models" / m / f"fold{fold}" / "summary.json").read_text())["dev_uar"]
                   for m in per_model]
        fused.append(late_fusion([per_model[m][k] for m in per_model], weights))
    np.testing.assert_allclose(probabilities(out), np.mean(fused, axis=0), atol=1e-12)


# --- predict --fusion applies the weights the fuse stage chose (issue 23 item 8, issue 24 item 3) ---

FUSIONS = {"best": {"models": ["fnn", "cnn"], "method": "mean", "top": 1},
           "learnt": {"models": ["fnn", "cnn", "motion"], "method": "select", "rounds": 5}}


def _dev_predictions(experiment: Path) -> None:
    """models/<m>/fold<k>/dev_predictions.csv, as training writes them: out-of-sample probabilities of the
    fold's training part (made up here: fnn right on most samples, the others noise)."""
    sheet = read_sheet(experiment / "samples.csv")
    classes = sorted(sheet["label"].unique())
    rng = np.random.default_rng(1)
    for model in ("fnn", "cnn", "motion"):
        for fold in FOLDS:
            part = sheet[sheet["fold"] != fold]
            y = np.array([classes.index(label) for label in part["label"]])
            proba = rng.dirichlet(np.ones(len(classes)), size=len(part))
            if model == "fnn":
                right = rng.random(len(part)) < 0.8
                proba[right] = 0.1
                proba[right, y[right]] = 0.8
            frame = pd.DataFrame({"id": part["id"], "fold": fold, "label": part["label"],
                                  "pred": [classes[i] for i in proba.argmax(1)]})
            frame[[f"p_{c}" for c in classes]] = proba
            frame.to_csv(experiment / "models" / model / f"fold{fold}" / "dev_predictions.csv", index=False)


@pytest.fixture(scope="module")
def fused_experiment(experiment, tmp_path_factory) -> Path:
    """A copy of the experiment with two more fusions (top, select), fused fold by fold as the fuse rule does."""
    from deepself.scoring.fusion import fuse_fold

    copy = tmp_path_factory.mktemp("fused") / "exp"
    shutil.copytree(experiment, copy, ignore=shutil.ignore_patterns("*.h5", "data"))
    config = json.loads((copy / "config.json").read_text())
    config["fusions"].update(FUSIONS)
    (copy / "config.json").write_text(json.dumps(config))
    _dev_predictions(copy)
    for name, spec in FUSIONS.items():
        for fold in FOLDS:
            folders = [copy / "models" / m / f"fold{fold}" for m in spec["models"]]
            fuse_fold([str(f / "predictions.csv") for f in folders], [str(f / "summary.json") for f in folders],
                      spec["method"], copy / "fusions" / name / f"fold{fold}" / "predictions.csv", spec.get("top"),
                      [str(f / "dev_predictions.csv") for f in folders], spec.get("rounds", 25))
    return copy


def _fuse_new_samples(fused_experiment: Path, name: str, samples: pd.DataFrame, scratch: Path) -> np.ndarray:
    """What the fuse stage gives for the new samples: each fold's checkpoints' probabilities written as
    predictions.csv and fused by fuse_fold with the fold's summaries and development predictions; the
    folds then averaged."""
    from deepself.scoring.fusion import fuse_fold

    spec, per_fold = FUSIONS[name], []
    per_model = {m: _per_fold(fused_experiment, m, samples) for m in spec["models"]}
    for k, fold in enumerate(FOLDS):
        predictions = []
        for m in spec["models"]:
            # ids apart from the experiment's: fuse checks that no development sample is a held-out one
            frame = pd.DataFrame({"id": [f"new{i}" for i in range(len(samples))], "fold": fold,
                                  "label": "c0", "pred": "c0"})
            frame[["p_c0", "p_c1", "p_c2"]] = per_model[m][k]
            path = scratch / "models" / m / f"fold{fold}" / "predictions.csv"
            path.parent.mkdir(parents=True, exist_ok=True)
            frame.to_csv(path, index=False)
            predictions.append(str(path))
        folders = [fused_experiment / "models" / m / f"fold{fold}" for m in spec["models"]]
        fused = fuse_fold(predictions, [str(f / "summary.json") for f in folders], spec["method"],
                          scratch / "fused" / f"fold{fold}" / "predictions.csv", spec.get("top"),
                          [str(f / "dev_predictions.csv") for f in folders], spec.get("rounds", 25))
        per_fold.append(probabilities(fused))
    return np.mean(per_fold, axis=0)


def test_predict_fusion_with_top_equals_the_fuse_stage(fused_experiment, tmp_path):
    """fusions.<name>.top: per fold, only the model with the highest development UAR, as `deepself fuse`."""
    _, files = held_out(fused_experiment, "2", "audio")
    samples = pd.DataFrame({"path": files})
    out = predict(fused_experiment, samples, fusion="best")
    np.testing.assert_allclose(probabilities(out), _fuse_new_samples(fused_experiment, "best", samples, tmp_path),
                               atol=1e-12)
    weights = [json.loads((fused_experiment / "fusions" / "best" / f"fold{k}" / "weights.json").read_text())
               for k in FOLDS]
    assert all(sorted(w["weights"].values()) == [0.0, 1.0] for w in weights)


def test_predict_fusion_with_select_equals_the_fuse_stage(experiment, fused_experiment, tmp_path):
    """method select: predict applies each fold's learnt weights (weights.json), as `deepself fuse` did."""
    sheet = pd.read_csv(experiment.parents[1] / "sheet.csv").head(6)
    sheet.drop(columns="label").to_csv(tmp_path / "new.csv", index=False)
    for name in ("audio", "motion"):
        for f in sheet[name]:
            shutil.copy(experiment.parents[1] / f, tmp_path / f)
    samples, origin = samples_from([], str(tmp_path / "new.csv"))
    out = predict(fused_experiment, samples, fusion="learnt", origin=origin)
    np.testing.assert_allclose(probabilities(out), _fuse_new_samples(fused_experiment, "learnt", samples, tmp_path),
                               atol=1e-12)
    for fold in FOLDS:
        written = json.loads((fused_experiment / "fusions" / "learnt" / f"fold{fold}" / "weights.json").read_text())
        assert written["weights"]["fnn"] > 0.5 and written["rounds"] == 5
        assert written == json.loads((tmp_path / "fused" / f"fold{fold}" / "weights.json").read_text())


def test_predict_fusion_refuses_weights_it_cannot_apply(experiment, fused_experiment, tmp_path):
    copy = tmp_path / "exp"
    shutil.copytree(fused_experiment, copy)
    samples = pd.DataFrame({"path": held_out(copy, "1", "audio")[1]})
    config = json.loads((copy / "config.json").read_text())
    config["fusions"]["best"]["top"] = 2  # changed since the fuse stage ran
    (copy / "config.json").write_text(json.dumps(config))
    with pytest.raises(DeepselfError, match=r"best/fold1/weights.json: written for another fusion .* run the workflow"):
        predict(copy, samples, fusion="best")
    (copy / "fusions" / "learnt" / "fold2" / "weights.json").unlink()
    samples, origin = samples_from([], str(experiment.parents[1] / "sheet.csv"))
    with pytest.raises(DeepselfError, match=r"learnt/fold2/weights.json: no such file; fusion 'learnt' \(method "
                                            r"select\) learns its weights in the workflow's fuse stage"):
        predict(copy, samples.head(2), fusion="learnt", origin=origin)


def test_choices_within_an_experiment_are_checked(experiment, tmp_path):
    _, files = held_out(experiment, "1", "audio")
    samples = pd.DataFrame({"path": files})
    with pytest.raises(DeepselfError, match=r"holds the models cnn, fnn, motion; choose one with --model"):
        predict(experiment, samples)
    with pytest.raises(DeepselfError, match=r"--fusion nope: not a fusion of .*\(fusions: sound, all\)"):
        predict(experiment, samples, fusion="nope")
    with pytest.raises(DeepselfError, match=r"read several modalities: audio \(fnn\), motion \(motion\); give --sheet"):
        predict(experiment, samples, fusion="all")
    with pytest.raises(DeepselfError, match=r"--model and --fusion choose within an experiment folder"):
        predict(experiment / "models" / "fnn" / "fold1" / "checkpoint.pt", samples, model="fnn")


def test_an_unfinished_experiment_is_refused(experiment, tmp_path):
    copy = tmp_path / "exp"
    shutil.copytree(experiment, copy, ignore=shutil.ignore_patterns("*.h5", "data"))
    (copy / "models" / "cnn" / "fold2" / "checkpoint.pt").unlink()
    samples = pd.DataFrame({"path": held_out(experiment, "1", "audio")[1]})
    with pytest.raises(DeepselfError, match=r"cnn/fold2/checkpoint\.pt: no such file; model 'cnn' is not trained"):
        predict(copy, samples, model="cnn")
    (copy / "config.json").unlink()
    with pytest.raises(DeepselfError, match=r"config\.json: no such file; --fusion reads"):
        predict(copy, samples, fusion="sound")


def test_a_file_at_another_sample_rate_is_refused(experiment, tmp_path):
    sf.write(tmp_path / "fast.wav", np.zeros(2000, dtype=np.float32), 2 * SR)
    checkpoint = experiment / "models" / "fnn" / "fold1" / "checkpoint.pt"
    with pytest.raises(DeepselfError, match=r"fast\.wav: sample rate 8000 Hz, the model learned from signals at 4000"):
        predict(checkpoint, pd.DataFrame({"path": [tmp_path / "fast.wav"]}))


# --- images, and resampling -----------------------------------------------------------------------

def test_images_give_the_held_out_predictions_of_training(tmp_path):
    rng = np.random.default_rng(1)
    rows = []
    for i in range(18):
        c = i % 2
        pixels = rng.integers(0, 80, size=(10, 12)) + np.where(np.arange(12) < 6, 150 * c, 150 * (1 - c))
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8), mode="L").save(tmp_path / f"i{i:02d}.png")
        rows.append({"path": f"i{i:02d}.png", "label": "lr"[c]})
    pd.DataFrame(rows).to_csv(tmp_path / "sheet.csv", index=False)
    R = run_experiment({
        "experiment": "img", "results": str(tmp_path / "results"),
        "data": {"adapter": "sheet", "sheet": str(tmp_path / "sheet.csv"), "modalities": {"main": {"column": "path"}}},
        "cv": {"folds": 3}, "features": {"pixels": {"kind": "image"}}, "train": {"epochs": 2, "batch_size": 4},
        "models": {"cnn": {"arch": "cnn2d", "feature": "pixels", "args": {"channels": [4]}}},
    })
    ids, files = held_out(R, "2", "path")
    out = predict(R / "models" / "cnn" / "fold2" / "checkpoint.pt", pd.DataFrame({"path": files}))
    expected = pd.read_csv(R / "models" / "cnn" / "fold2" / "predictions.csv").set_index("id").loc[ids]
    np.testing.assert_allclose(probabilities(out), probabilities(expected), atol=1e-5, rtol=0)


def test_resampled_audio_is_resampled_again(tmp_path):
    rng = np.random.default_rng(2)
    rows = []
    for i in range(9):
        rate = (8000, 6000, 4000)[i % 3]  # every file at its own rate; the store at 4 kHz
        sf.write(tmp_path / f"r{i}.wav", rng.standard_normal(rate // 4).astype(np.float32), rate, subtype="FLOAT")
        rows.append({"path": f"r{i}.wav", "label": "ab"[i % 2]})
    pd.DataFrame(rows).to_csv(tmp_path / "sheet.csv", index=False)
    R = run_experiment({
        "experiment": "rs", "results": str(tmp_path / "results"),
        "data": {"adapter": "sheet", "sheet": str(tmp_path / "sheet.csv"),
                 "modalities": {"main": {"column": "path", "resample": 4000}}},
        "cv": {"folds": 3}, "features": {"wave": {"kind": "raw"}}, "train": {"epochs": 1, "batch_size": 4},
        "models": {"fnn": {"arch": "fnn", "feature": "wave", "args": {"hidden": [4]}}},
    })
    checkpoint = load_checkpoint(R / "models" / "fnn" / "fold1" / "checkpoint.pt")
    assert "ingest" in checkpoint["store_meta"]
    ids, files = held_out(R, "1", "path")
    out = predict(R / "models" / "fnn" / "fold1" / "checkpoint.pt", pd.DataFrame({"path": files}))
    expected = pd.read_csv(R / "models" / "fnn" / "fold1" / "predictions.csv").set_index("id").loc[ids]
    np.testing.assert_allclose(probabilities(out), probabilities(expected), atol=1e-5, rtol=0)


# --- the command line -----------------------------------------------------------------------------

def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deepself")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def test_command_writes_the_csv_or_prints_it(experiment, tmp_path, capsys):
    ids, files = held_out(experiment, "1", "audio")
    checkpoint = str(experiment / "models" / "cnn" / "fold1" / "checkpoint.pt")
    args = _parser().parse_args(["predict", checkpoint, *files, "--out", str(tmp_path / "p.csv")])
    args.run(args)
    written = pd.read_csv(tmp_path / "p.csv")
    expected = pd.read_csv(experiment / "models" / "cnn" / "fold1" / "predictions.csv").set_index("id").loc[ids]
    np.testing.assert_allclose(probabilities(written), probabilities(expected), atol=1e-5, rtol=0)
    args = _parser().parse_args(["predict", checkpoint, files[0]])
    args.run(args)
    printed = capsys.readouterr().out
    assert printed.splitlines()[0] == "id,pred,p_c0,p_c1,p_c2"
    assert printed.splitlines()[1].startswith(files[0])


def test_command_refuses_files_and_sheet_together(experiment):
    args = _parser().parse_args(["predict", str(experiment), "a.wav", "--sheet", "s.csv"])
    with pytest.raises(DeepselfError, match="give the FILES to predict, or --sheet"):
        args.run(args)


def test_deepself_predict_subcommand(experiment, tmp_path):
    ids, files = held_out(experiment, "2", "audio")
    result = subprocess.run([sys.executable, "-m", "deepself", "predict", str(experiment), *files, "--model", "fnn",
                             "--out", str(tmp_path / "p.csv")], capture_output=True, text=True, cwd=REPO)
    assert result.returncode == 0, result.stderr
    out = pd.read_csv(tmp_path / "p.csv")
    np.testing.assert_allclose(probabilities(out), probabilities(predict(experiment, pd.DataFrame({"path": files}),
                                                                         model="fnn")), atol=1e-6)


# --- what a careless user gives predict (issue 13, item 9) ---------------------------------------

def _deepself(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "deepself", *args], capture_output=True, text=True, cwd=REPO)


def test_a_recording_of_another_length_warns_what_was_done(experiment, tmp_path, caplog):
    checkpoint = experiment / "models" / "fnn" / "fold1" / "checkpoint.pt"
    trained = int(load_checkpoint(checkpoint)["store_meta"]["n_samples"])
    t = np.arange(trained + 500) / SR
    sf.write(tmp_path / "long.wav", np.sin(2 * np.pi * 700 * t).astype(np.float32), SR, subtype="FLOAT")
    sf.write(tmp_path / "short.wav", np.sin(2 * np.pi * 700 * t[:300]).astype(np.float32), SR, subtype="FLOAT")
    with caplog.at_level("WARNING", logger="deepself.deploy.replay"):
        out = predict(checkpoint, pd.DataFrame({"path": [str(tmp_path / "long.wav"), str(tmp_path / "short.wav")]}))
    assert len(out) == 2
    messages = [r.getMessage() for r in caplog.records]
    assert any("long.wav" in m and f"cropped to {trained} samples" in m for m in messages), messages
    assert any("short.wav" in m and f"zero-padded to {trained} samples" in m for m in messages), messages


def test_files_may_follow_options(experiment, tmp_path):
    _, files = held_out(experiment, "2", "audio")
    result = _deepself("predict", str(experiment), "--model", "fnn", *files[:2], "--out", str(tmp_path / "p.csv"))
    assert result.returncode == 0, result.stderr
    assert list(pd.read_csv(tmp_path / "p.csv")["id"]) == files[:2]
    result = _deepself("predict", str(experiment), "--model", "fnn", files[0], "--no-such-option")
    assert result.returncode == 2 and "unrecognized arguments: --no-such-option" in result.stderr


def test_the_output_has_the_columns_of_predictions_csv(experiment, tmp_path):
    sheet = read_sheet(experiment / "samples.csv").head(4)[["id", "label", "audio"]]
    sheet.to_csv(tmp_path / "new.csv", index=False)
    samples, origin = samples_from([], str(tmp_path / "new.csv"))
    out = predict(experiment, samples, model="cnn", origin=origin)
    trained = pd.read_csv(experiment / "models" / "cnn" / "fold1" / "predictions.csv")
    assert list(out.columns) == [c for c in trained.columns if c != "fold"]
    assert list(out["label"]) == list(sheet["label"])


def test_an_audio_model_given_an_array_names_the_rate_it_expects(experiment, tmp_path):
    np.save(tmp_path / "x.npy", np.zeros(1200, dtype=np.float32))
    with pytest.raises(DeepselfError, match=rf"x.npy: the model learned from audio at {SR} Hz; give an audio file"):
        predict(experiment / "models" / "fnn" / "fold1" / "checkpoint.pt", pd.DataFrame({"path": [tmp_path / "x.npy"]}))


def test_out_of_the_wrong_kind_is_one_clear_error(experiment, tmp_path):
    _, files = held_out(experiment, "1", "audio")
    checkpoint = str(experiment / "models" / "fnn" / "fold1" / "checkpoint.pt")
    result = _deepself("predict", checkpoint, files[0], "--out", str(tmp_path))
    assert result.returncode == 1 and "is a folder; give the path of the CSV file" in result.stderr
    assert "Traceback" not in result.stderr
    (tmp_path / "bundle.txt").write_text("not a folder")
    result = _deepself("export", checkpoint, "--out", str(tmp_path / "bundle.txt"))
    assert result.returncode == 1 and "is a file; give the folder" in result.stderr
    assert "Traceback" not in result.stderr and (tmp_path / "bundle.txt").read_text() == "not a folder"
