"""deepself export: model.onnx and preprocessing.json, checked with onnxruntime against PyTorch."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import onnx
import onnxruntime
import pandas as pd
import pytest
import scipy.signal
import soundfile as sf
import torch

from deepself.config import validate_config
from deepself.errors import DeepselfError
from deepself.deploy.export import add_parser, export_checkpoint
from deepself.io.ingest import ingest
from deepself.io.sheet import build_sheet, read_sheet, write_sheet
from deepself.models import create_model, list_models
from deepself.inference import load_checkpoint
from deepself.deploy.predict import predict
from deepself.deploy.replay import model_input
from deepself.signal import features
from deepself.signal.stages import feature_store, filter_store
from deepself.training.fold import train_fold

SR = 4000
TOLERANCE = 1e-4


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    """fold 1 of an FNN on band-passed wavs and a 2-D CNN on their spectrograms (24 wavs, 3 classes)."""
    root = tmp_path_factory.mktemp("export")
    rng = np.random.default_rng(0)
    rows = []
    for i in range(24):
        c, n = i % 3, 900 + 25 * (i % 4)
        wave = 0.5 * np.sin(2 * np.pi * (300, 700, 1300)[c] * np.arange(n) / SR) + 0.1 * rng.standard_normal(n)
        sf.write(root / f"a{i:02d}.wav", wave.astype(np.float32), SR, subtype="FLOAT")
        rows.append({"path": f"a{i:02d}.wav", "label": f"c{c}"})
    pd.DataFrame(rows).to_csv(root / "sheet.csv", index=False)
    C = validate_config({
        "experiment": "x", "data": {"adapter": "sheet", "sheet": str(root / "sheet.csv"),
                                    "modalities": {"main": {"column": "path", "filter": {"band": [100, 1800]}}}},
        "cv": {"folds": 3}, "train": {"epochs": 3, "batch_size": 8, "lr": 0.01},
        "features": {"wave": {"kind": "raw"}, "spec": {"kind": "spectrogram", "n_fft": 128, "hop_length": 64}},
        "models": {"fnn": {"arch": "fnn", "feature": "wave", "args": {"hidden": [16]}},
                   "cnn": {"arch": "cnn2d", "feature": "spec", "args": {"channels": [4, 8]}}},
    })
    write_sheet(build_sheet(C["data"], C["cv"], root), root / "samples.csv")
    spec = C["data"]["modalities"]["main"]
    ingest(root / "samples.csv", "main", spec, root / "raw.h5")
    filter_store(root / "raw.h5", root / "filtered.h5", spec["filter"]["band"], spec["filter"]["order"])
    feature_store(root / "filtered.h5", root / "spec.h5", "spec", C["features"]["spec"])
    for name, store in (("fnn", "filtered.h5"), ("cnn", "spec.h5")):
        job = {"name": name, **C["models"][name], "classes": None, "dev_fraction": 0.25, "cv_seed": 0}
        train_fold(root / "samples.csv", root / store, "1", job, root / name)
    return root


def held_out_files(root: Path) -> list[str]:
    sheet = read_sheet(root / "samples.csv")
    return list(sheet.loc[sheet["fold"] == "1", "path"])


def run_onnx(bundle: Path, x: np.ndarray) -> np.ndarray:
    session = onnxruntime.InferenceSession(str(bundle / "model.onnx"), providers=["CPUExecutionProvider"])
    return session.run(["probabilities"], {"input": x.astype(np.float32)})[0]


@pytest.mark.parametrize("model", ["fnn", "cnn"])
def test_onnx_gives_the_probabilities_of_pytorch(trained, tmp_path, model):
    checkpoint_path = trained / model / "checkpoint.pt"
    export_checkpoint(checkpoint_path, tmp_path / "bundle")
    checkpoint = load_checkpoint(checkpoint_path)
    files = held_out_files(trained)
    x = np.stack([model_input(f, checkpoint) for f in files])
    torch_proba = predict(checkpoint_path, pd.DataFrame({"path": files})).filter(like="p_").to_numpy()
    np.testing.assert_allclose(run_onnx(tmp_path / "bundle", x), torch_proba, atol=TOLERANCE, rtol=0)
    # any batch size, one included
    np.testing.assert_allclose(run_onnx(tmp_path / "bundle", x[:1]), torch_proba[:1], atol=TOLERANCE, rtol=0)
    expected = pd.read_csv(trained / model / "predictions.csv").filter(like="p_").to_numpy()
    np.testing.assert_allclose(run_onnx(tmp_path / "bundle", x), expected, atol=TOLERANCE, rtol=0)


def test_bundle_is_two_plain_files_and_says_everything(trained, tmp_path):
    bundle = export_checkpoint(trained / "cnn" / "checkpoint.pt", tmp_path / "b")
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["model.onnx", "preprocessing.json"]
    for path in (tmp_path / "b").iterdir():
        assert not path.read_bytes().startswith(b"\x80"), f"{path} looks like a pickle"
    onnx.checker.check_model(str(tmp_path / "b" / "model.onnx"))
    stored = json.loads((tmp_path / "b" / "preprocessing.json").read_text())
    assert stored == json.loads(json.dumps(bundle))
    checkpoint = load_checkpoint(trained / "cnn" / "checkpoint.pt")
    assert stored["classes"] == ["c0", "c1", "c2"]
    assert stored["model"]["input"]["shape"] == ["batch", 1, 65, 16]
    assert stored["signal"]["sample_rate"] == SR and stored["signal"]["n_samples"] == 975
    assert stored["filter"] == {"band": [100, 1800], "order": 4}
    assert stored["feature"]["kind"] == "spectrogram" and stored["feature"]["params"]["n_fft"] == 128
    np.testing.assert_array_equal(np.array(stored["normalize"]["mean"], dtype=np.float32),
                                  checkpoint["normalize"]["mean"].numpy())
    np.testing.assert_array_equal(np.array(stored["normalize"]["std"], dtype=np.float32),
                                  checkpoint["normalize"]["std"].numpy())


def test_preprocessing_json_alone_rebuilds_the_input(trained, tmp_path):
    """A consumer with only the bundle (soundfile, scipy, librosa's reference spectrogram) gets the
    probabilities of training."""
    export_checkpoint(trained / "cnn" / "checkpoint.pt", tmp_path / "b")
    spec = json.loads((tmp_path / "b" / "preprocessing.json").read_text())
    inputs = []
    for path in held_out_files(trained):
        wave, rate = sf.read(path, dtype="float32", always_2d=True)
        assert rate == spec["signal"]["sample_rate"]
        x = np.zeros((spec["signal"]["n_channels"], spec["signal"]["n_samples"]), dtype=np.float32)
        x[:, : len(wave)] = wave.T[:, : x.shape[1]]
        sos = scipy.signal.butter(spec["filter"]["order"], spec["filter"]["band"], "bandpass", fs=rate, output="sos")
        x = scipy.signal.sosfiltfilt(sos, x, axis=-1).astype(np.float32)
        inputs.append(features.spectrogram(x, rate, **spec["feature"]["params"]))
    proba = run_onnx(tmp_path / "b", np.stack(inputs))
    expected = pd.read_csv(trained / "cnn" / "predictions.csv").filter(like="p_").to_numpy()
    np.testing.assert_allclose(proba, expected, atol=1e-3, rtol=0)  # librosa's STFT vs the torch one of training


# Every other registered arch, from a checkpoint of random weights on an input it takes.
ARCHS = {
    "cnn1d": ("raw", {}), "cnn3d": ("map", {}), "crnn": ("map", {"conv": "2d", "channels": [4, 8]}),
    "rnn": ("map", {"hidden": 8}), "lstm": ("map", {"hidden": 8, "bidirectional": True}),
    "gru": ("raw", {"hidden": 8, "readout": "mean"}), "panns": ("map", {"name": "cnn6"}),
    "torchvision": ("map", {"name": "resnet18"}), "resnext_wsl": ("map", {}),
    "minirocket": ("raw", {"n_kernels": 84}), "multirocket": ("raw", {"n_kernels": 84}),
    "hydra": ("raw", {"n_groups": 16}), "multirocket_hydra": ("raw", {"n_kernels": 84, "hydra_groups": 16}),
    "inception": ("raw", {}), "lite": ("raw", {}),
}
# Slow to export: torch.export unrolls MiniRocket's loop over dilations (80 s for 84 kernels on
# 200 samples on the 2-core CPU), and the WSL ResNeXt is large.
SLOW_EXPORTS = ("resnext_wsl", "minirocket", "multirocket", "multirocket_hydra")


def test_every_arch_is_covered():
    # yamnet needs 64 Mel bands and 96 frames, which this fixture's maps are not: its own test below
    assert sorted([*ARCHS, "yamnet"]) == sorted(set(list_models()) - {"fnn", "cnn2d"})


@pytest.mark.parametrize("arch, normalize", [
    pytest.param(a, "feature", marks=[pytest.mark.slow] if a in SLOW_EXPORTS else []) for a in ARCHS
] + [("cnn1d", "sample"), ("lstm", "sample")])
def test_other_archs_export_and_match(trained, tmp_path, arch, normalize):
    kind, args = ARCHS[arch]
    base = load_checkpoint(trained / ("fnn" if kind == "raw" else "cnn") / "checkpoint.pt")
    model_args = {**{k: base["model_args"][k] for k in ("n_chans", "n_freqs", "n_times", "n_outputs")}, **args}
    assert (model_args["n_freqs"] is None) == (kind == "raw")
    torch.manual_seed(0)
    model = create_model(arch, **model_args).eval()
    if arch == "hydra":  # its kernels are drawn (zeros until then), and its head scales sparse features
        model.hydra.draw(0)
        model.head.sparse[::2] = True
    stats = base["normalize"] if normalize == "feature" else {"mode": "sample"}
    checkpoint = {**base, "model": arch, "model_args": model_args, "normalize": stats,
                  "state_dict": model.state_dict()}
    torch.save(checkpoint, tmp_path / "checkpoint.pt")
    export_checkpoint(tmp_path / "checkpoint.pt", tmp_path / "b")
    x = np.stack([model_input(f, checkpoint) for f in held_out_files(trained)])
    expected = predict(tmp_path / "checkpoint.pt", pd.DataFrame({"path": held_out_files(trained)}))
    expected = expected.filter(like="p_").to_numpy()
    np.testing.assert_allclose(run_onnx(tmp_path / "b", x), expected, atol=TOLERANCE, rtol=0)
    np.testing.assert_allclose(run_onnx(tmp_path / "b", x[:1]), expected[:1], atol=TOLERANCE, rtol=0)


def test_yamnet_exports_and_matches(trained, tmp_path):
    """YAMNet on 64 Mel bands x 100 frames: onnxruntime on the bundle gives PyTorch's probabilities."""
    base = load_checkpoint(trained / "cnn" / "checkpoint.pt")
    model_args = {"n_chans": 1, "n_freqs": 64, "n_times": 100, "n_outputs": base["model_args"]["n_outputs"]}
    torch.manual_seed(0)
    model = create_model("yamnet", **model_args).eval()
    checkpoint = {**base, "model": "yamnet", "model_args": model_args, "normalize": {"mode": "none"},
                  "state_dict": model.state_dict()}
    torch.save(checkpoint, tmp_path / "checkpoint.pt")
    bundle = export_checkpoint(tmp_path / "checkpoint.pt", tmp_path / "b")
    assert bundle["model"]["input"]["shape"] == ["batch", 1, 64, 100]
    x = np.random.default_rng(0).normal(size=(3, 1, 64, 100)).astype(np.float32)
    with torch.no_grad():
        expected = torch.softmax(model(torch.from_numpy(x)), dim=1).numpy()
    np.testing.assert_allclose(run_onnx(tmp_path / "b", x), expected, atol=TOLERANCE, rtol=0)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="deepself")
    add_parser(parser.add_subparsers(dest="command", required=True))
    return parser


def test_command_exports_and_checks(trained, tmp_path):
    files = held_out_files(trained)[:3]
    args = _parser().parse_args(["export", str(trained / "fnn" / "checkpoint.pt"), "--out", str(tmp_path / "b"),
                                 "--check", *files])
    args.run(args)
    assert (tmp_path / "b" / "model.onnx").stat().st_size > 0
    # a second export replaces the bundle
    args.run(args)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def test_a_failed_check_leaves_no_bundle(trained, tmp_path):
    sf.write(tmp_path / "fast.wav", np.zeros(1800, dtype=np.float32), 2 * SR)
    with pytest.raises(DeepselfError, match=r"fast\.wav: sample rate 8000 Hz"):
        export_checkpoint(trained / "cnn" / "checkpoint.pt", tmp_path / "b", check_files=[str(tmp_path / "fast.wav")])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["fast.wav"]


def test_a_folder_that_is_not_a_bundle_is_kept(trained, tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "notes.txt").write_text("mine")
    with pytest.raises(DeepselfError, match=r"exists and is not a deepself bundle"):
        export_checkpoint(trained / "fnn" / "checkpoint.pt", tmp_path / "b")
    assert (tmp_path / "b" / "notes.txt").read_text() == "mine"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["b"]


def _users_project(folder: Path) -> None:
    """A user's project folder that happens to hold a preprocessing.json (issue 23)."""
    (folder / "src").mkdir(parents=True)
    (folder / "src" / "app.py").write_text("print('mine')\n")
    (folder / "preprocessing.json").write_text('{"mine": true}\n')


def test_a_users_folder_with_a_preprocessing_json_is_refused_before_the_export(trained, tmp_path, monkeypatch):
    import deepself.deploy.export

    def no_export(*args, **kwargs):
        raise AssertionError("the costly ONNX export ran before the folder was checked")

    monkeypatch.setattr(deepself.deploy.export, "_export_onnx", no_export)
    _users_project(tmp_path / "proj")
    with pytest.raises(DeepselfError, match=r"proj: exists and is not a deepself bundle \(src\).*new or empty folder"):
        export_checkpoint(trained / "fnn" / "checkpoint.pt", tmp_path / "proj")
    assert (tmp_path / "proj" / "src" / "app.py").read_text() == "print('mine')\n"
    assert (tmp_path / "proj" / "preprocessing.json").read_text() == '{"mine": true}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proj"]


def test_a_folder_of_lookalike_bundle_files_is_refused(trained, tmp_path):
    (tmp_path / "b").mkdir()
    (tmp_path / "b" / "model.onnx").write_bytes(b"not ours")
    (tmp_path / "b" / "preprocessing.json").write_text('{"mine": true}\n')
    with pytest.raises(DeepselfError, match=r"b: exists and is not a deepself bundle \(no complete bundle\)"):
        export_checkpoint(trained / "fnn" / "checkpoint.pt", tmp_path / "b")
    assert (tmp_path / "b" / "model.onnx").read_bytes() == b"not ours"


def test_an_empty_folder_is_written_into(trained, tmp_path):
    (tmp_path / "b").mkdir()
    export_checkpoint(trained / "fnn" / "checkpoint.pt", tmp_path / "b")
    assert sorted(p.name for p in (tmp_path / "b").iterdir()) == ["model.onnx", "preprocessing.json"]


def test_files_added_to_a_bundle_during_the_export_are_kept(trained, tmp_path, monkeypatch):
    import deepself.deploy.export

    export_checkpoint(trained / "fnn" / "checkpoint.pt", tmp_path / "proj")
    real = deepself.deploy.export._export_onnx

    def meanwhile(*args, **kwargs):  # the user adds code to the folder while the export runs
        real(*args, **kwargs)
        (tmp_path / "proj" / "src").mkdir()
        (tmp_path / "proj" / "src" / "app.py").write_text("print('mine')\n")

    monkeypatch.setattr(deepself.deploy.export, "_export_onnx", meanwhile)
    with pytest.raises(DeepselfError, match=r"proj: exists and is not a deepself bundle \(src\)"):
        export_checkpoint(trained / "fnn" / "checkpoint.pt", tmp_path / "proj")
    assert (tmp_path / "proj" / "src" / "app.py").read_text() == "print('mine')\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["proj"]
