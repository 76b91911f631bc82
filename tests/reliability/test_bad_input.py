"""Bad input through the real stage commands: one clear message naming the file, sample or key, exit 1, no output.

Every case runs ``deepself <stage> ...`` as the workflow's rules do, then checks that the terminal
shows exactly one ``deepself: error:`` line (no traceback) with the expected words, and that the
stage left no file behind (its output, or a temporary file, in its folder). By default the command
runs in this process (``deepself.cli.main``, what ``python -m deepself`` calls); with ``-m slow``
every case also runs as ``python -m deepself`` in a subprocess.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import traceback
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import soundfile as sf
import torch
from PIL import Image

from deepself.cli import build_parser, main
from deepself.config import validate_config
from deepself.errors import DeepselfError
from deepself.io.ingest import ingest
from deepself.io.store import create_store
from deepself.models import create_model
from deepself.deploy.predict import add_parser
from deepself.training.fold import train_fold

REPO = Path(__file__).resolve().parents[2]
SR = 8000
CONFIG = validate_config({"experiment": "bad", "data": {"adapter": "sheet", "sheet": "sheet.csv"},
                          "features": {"f": {"kind": "raw"}}, "models": {"m": {"arch": "fnn", "feature": "f"}}})
AUDIO = CONFIG["data"]["modalities"]["main"]
SENSOR = {**AUDIO, "sample_rate": 50, "separator": "comma"}


def _registered(command: str) -> bool:
    subparsers = [a for a in build_parser()._actions if getattr(a, "choices", None)]
    return any(command in a.choices for a in subparsers)


# Until deepself/cli.py registers `predict`, the same handling as cli.main around deepself.deploy.predict's parser.
_PREDICT_STANDIN = """
import argparse, sys
from deepself.errors import DeepselfError
from deepself.deploy.predict import add_parser
parser = argparse.ArgumentParser(prog="deepself")
add_parser(parser.add_subparsers(dest="command", required=True))
args = parser.parse_args(sys.argv[1:])
try:
    args.run(args)
except DeepselfError as err:
    print(f"deepself: error: {err}", file=sys.stderr)
    sys.exit(1)
"""


def _main(argv: list[str]) -> int:
    if argv[0] == "predict" and not _registered("predict"):
        parser = argparse.ArgumentParser(prog="deepself")
        add_parser(parser.add_subparsers(dest="command", required=True))
        args = parser.parse_args(argv)
        try:
            args.run(args)
        except DeepselfError as err:
            print(f"deepself: error: {err}", file=sys.stderr)
            return 1
        return 0
    return main(argv)


@pytest.fixture(params=["in-process", pytest.param("subprocess", marks=pytest.mark.slow)])
def deepself(request, capsys):
    """Run ``deepself ARGS...``; returns a CompletedProcess either way."""

    def run(*args) -> subprocess.CompletedProcess:
        argv = [str(a) for a in args]
        if request.param == "subprocess":
            command = [sys.executable, "-m", "deepself"]
            if argv[0] == "predict" and not _registered("predict"):
                command = [sys.executable, "-c", _PREDICT_STANDIN]
            return subprocess.run(command + argv, cwd=REPO, capture_output=True, text=True, timeout=300)
        capsys.readouterr()
        try:
            code = _main(argv)
        except BaseException:  # what the terminal would show: a traceback
            return subprocess.CompletedProcess(argv, 2, capsys.readouterr().out, traceback.format_exc())
        captured = capsys.readouterr()
        return subprocess.CompletedProcess(argv, code, captured.out, captured.err)

    return run


def files_in(folder: Path) -> list[str]:
    return sorted(str(p.relative_to(folder)) for p in folder.rglob("*") if p.is_file())


def assert_refused(result: subprocess.CompletedProcess, *needles: str) -> str:
    """Exit status 1 and exactly one error line, without a traceback, holding every needle."""
    assert result.returncode == 1, result.stderr[-3000:]
    assert "Traceback" not in result.stderr, result.stderr[-3000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("deepself: error: ")]
    assert len(errors) == 1, result.stderr[-3000:]
    for needle in needles:
        assert needle in errors[0], errors[0]
    return errors[0]


def wav(path: Path, n: int = 800, channels: int = 1, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    sf.write(path, (0.1 * rng.standard_normal((n, channels))).astype(np.float32), SR)
    return path


def samples_csv(folder: Path, files: list[Path]) -> Path:
    """A samples.csv as the sheet stage writes it: ids, labels, folds, absolute paths."""
    pd.DataFrame({"id": [f.stem for f in files], "label": ["ab"[i % 2] for i in range(len(files))],
                  "fold": [str(i % 2 + 1) for i in range(len(files))],
                  "path": [str(f) for f in files]}).to_csv(folder / "samples.csv", index=False)
    return folder / "samples.csv"


def run_ingest(deepself, folder: Path, files: list[Path], spec: dict) -> subprocess.CompletedProcess:
    sheet = samples_csv(folder, files)
    before = files_in(folder)
    result = deepself("ingest", "--sheet", sheet, "--modality", "main", "--spec", json.dumps(spec),
                      "--out", folder / "raw" / "main.h5")
    assert files_in(folder) == before, "ingest left a file behind"
    return result


# --- files -----------------------------------------------------------------------------------------

def put(path: Path, content) -> Path:
    """Write ``content`` to ``path``: bytes or text as they are, an array as ``.npy``, an image as itself."""
    if isinstance(content, np.ndarray):
        np.save(path, content)
    elif isinstance(content, Image.Image):
        content.save(path)
    elif isinstance(content, bytes):
        path.write_bytes(content)
    else:
        path.write_text(content)
    return path


def first_half(path: Path) -> bytes:
    whole = path.read_bytes()
    return whole[: len(whole) // 2]


def a_nan_at(row: int, column: int) -> np.ndarray:
    signal = np.ones((20, 2))
    signal[row, column] = np.nan
    return signal


TABLE = "1,2\n3,4\n5,6\n"
# Each case: the sheet's files, written into a folder d; the modality's spec; the error's words. With
# length_s, the tables are first read while the store is being written: still no store is left.
BAD_FILES = {
    "empty-file": (lambda d: [wav(d / "s0.wav"), put(d / "s1.wav", b"")], AUDIO, "s1.wav: empty file"),
    "truncated-audio": (lambda d: [wav(d / "s0.wav"), put(d / "cut.wav", first_half(wav(d / "whole.wav")))], AUDIO,
                        "cut.wav: cannot be decoded as audio: truncated"),
    "corrupt-audio": (lambda d: [wav(d / "s0.wav"), put(d / "junk.wav", b"RIFF\x00\x00\x00\x00WAVEjunkjunkjunk")],
                      AUDIO, "junk.wav: cannot be decoded as audio"),
    **{f"non-numeric-cell-{when}": (
        lambda d: [put(d / "t0.csv", "x,y\n" + TABLE), put(d / "t1.csv", "x,y\n" + TABLE),
                   put(d / "t2.csv", "x,y\n1,2\n3,abc\n5,6\n")],
        {**SENSOR, "length_s": length_s}, "t2.csv: line 3, column 2: 'abc' is not a number")
       for when, length_s in (("first-pass", None), ("while-writing", 0.06))},
    **{f"{cell or 'empty'}-cell-in-a-table": (
        lambda d, cell=cell: [put(d / "t0.csv", TABLE), put(d / "t1.csv", f"1,2\n3,4\n{cell},6\n")], SENSOR,
        f"t1.csv: line 3, column 1: {repr(cell) + ' is not a finite number' if cell else 'empty cell'}")
       for cell in ("nan", "inf", "-inf", "")},
    "nan-in-an-npy-signal": (lambda d: [put(d / "n0.npy", np.ones((20, 2))), put(d / "n1.npy", a_nan_at(7, 1))],
                             SENSOR, "n1.npy: channel 1, sample 7: nan is not a finite number"),
    **{f"channel-count-{when}": (
        lambda d: [put(d / "t0.csv", TABLE), put(d / "t1.csv", TABLE), put(d / "t2.csv", "1\n3\n5\n")],
        {**SENSOR, "length_s": length_s}, "t2.csv: sample 't2' has 1 channels, sample 't0' has 2")
       for when, length_s in (("first-pass", None), ("while-writing", 0.06))},
    "channel-count-in-audio": (lambda d: [wav(d / "mono.wav"), wav(d / "stereo.wav", channels=2)], AUDIO,
                               "stereo.wav: sample 'stereo' has 2 channels, sample 'mono' has 1"),
    "not-an-image": (lambda d: [put(d / "ok.png", Image.fromarray(np.zeros((4, 4), np.uint8))),
                                put(d / "text.png", "this is not a PNG")],
                     AUDIO, "text.png: cannot be decoded as an image"),
    "deleted-after-the-sheet-stage": (lambda d: [wav(d / "s0.wav"), d / "gone.wav"], AUDIO, "gone.wav: no such file"),
}


@pytest.mark.parametrize("files, spec, words", BAD_FILES.values(), ids=BAD_FILES)
def test_a_bad_file_is_named(deepself, tmp_path, files, spec, words):
    assert_refused(run_ingest(deepself, tmp_path, files(tmp_path), spec), words)


# --- the sample sheet ------------------------------------------------------------------------------

def run_sheet(deepself, folder: Path, rows: list[dict], **data) -> subprocess.CompletedProcess:
    for row in rows:
        if not (folder / row["path"]).exists() and row["path"] != "missing.wav":
            wav(folder / row["path"])
    pd.DataFrame(rows).to_csv(folder / "sheet.csv", index=False)
    config = validate_config({**CONFIG, "data": {"adapter": "sheet", "sheet": str(folder / "sheet.csv"), **data},
                              "cv": {"folds": "from_sheet" if "fold" in rows[0] else 2}})
    before = files_in(folder)
    result = deepself("sheet", "--data", json.dumps(config["data"]), "--cv", json.dumps(config["cv"]),
                      "--work-dir", folder / "work", "--out", folder / "samples.csv")
    assert files_in(folder) == before, "the sheet stage left a file behind"
    return result


ROWS = [{"id": f"s{i}", "path": f"s{i}.wav", "label": "ab"[i % 2]} for i in range(4)]


def test_a_label_not_in_the_class_list(deepself, tmp_path):
    result = run_sheet(deepself, tmp_path, ROWS + [{"id": "odd", "path": "odd.wav", "label": "c"}], classes=["a", "b"])
    assert_refused(result, "sheet.csv: sample 'odd' has label 'c', which is not in data.classes (a, b)")


def test_duplicate_sample_ids(deepself, tmp_path):
    rows = [dict(row, id="s1") if row["id"] == "s3" else row for row in ROWS]
    assert_refused(run_sheet(deepself, tmp_path, rows), "sheet.csv: duplicate sample id 's1'")


def test_a_path_that_does_not_exist(deepself, tmp_path):
    result = run_sheet(deepself, tmp_path, ROWS + [{"id": "gone", "path": "missing.wav", "label": "a"}])
    assert_refused(result, "sheet.csv: sample 'gone': file", "missing.wav' does not exist")


def test_a_fold_with_a_class_absent_from_its_training_part(deepself, tmp_path):
    rows = [dict(row, fold="1" if row["id"] == "s0" else "2") for row in ROWS]  # every b is in fold 2
    result = run_sheet(deepself, tmp_path, rows)
    assert_refused(result, "sheet.csv: fold '2': class 'b' is absent from its training part")


# --- stages and config -------------------------------------------------------------------------------

@pytest.fixture
def raw_store(tmp_path) -> Path:
    files = [wav(tmp_path / f"s{i}.wav", seed=i) for i in range(4)]
    ingest(samples_csv(tmp_path, files), "main", AUDIO, tmp_path / "raw.h5")
    return tmp_path / "raw.h5"


def test_a_recording_shorter_than_the_feature_window(deepself, raw_store):
    before = files_in(raw_store.parent)
    result = deepself("features", "--input", raw_store, "--name", "spec",
                      "--spec", json.dumps({"kind": "spectrogram", "n_fft": 2048}), "--out", raw_store.parent / "f.h5")
    assert_refused(result, "features.spec.n_fft: 2048 is longer than the signal (800 samples)")
    assert files_in(raw_store.parent) == before


def test_a_band_pass_edge_above_nyquist(deepself, raw_store):
    before = files_in(raw_store.parent)
    result = deepself("filter", "--input", raw_store, "--spec", json.dumps({"band": [100, 5000], "order": 4}),
                      "--key", "data.modalities.main.filter", "--out", raw_store.parent / "filtered.h5")
    assert_refused(result, "data.modalities.main.filter.band: [100, 5000] Hz is not a band with 0 < low < high < "
                           "the Nyquist frequency 4000 Hz")
    assert files_in(raw_store.parent) == before


@pytest.fixture
def maps(tmp_path) -> tuple[Path, Path]:
    """12 maps of 1 x 4 x 6 in 3 folds, and their samples.csv."""
    ids = [f"s{i:02d}" for i in range(12)]
    with create_store(tmp_path / "maps.h5", 12, (1, 4, 6), {"kind": "signal", "layout": "CFT"}) as writer:
        writer.write(ids, np.random.default_rng(0).random((12, 1, 4, 6), dtype=np.float32))
    pd.DataFrame({"id": ids, "label": list("ab" * 6), "fold": [str(i % 3 + 1) for i in range(12)]}).to_csv(
        tmp_path / "samples.csv", index=False)
    return tmp_path / "samples.csv", tmp_path / "maps.h5"


def _train_spec(arch: str, args: dict, classes=None) -> str:
    config = validate_config({**CONFIG, "models": {"m": {"arch": arch, "feature": "f", "args": args}}})
    return json.dumps({"name": "m", **config["models"]["m"], "classes": classes, "dev_fraction": 0.25, "cv_seed": 0})


@pytest.mark.parametrize("args, words", [
    ({"channels": [4, 4], "kernel": 3, "padding": 0}, "model args: conv layer 2 (kernel 3 x 3, stride 1 x 1, padding "
                                                      "0 x 0) shrinks the input of 1 x 2"),
    ({"channels": [4, 4, 4]}, "model args: pooling 2 x 2 after conv layer 3 shrinks 1 x 1 to 0 x 0"),
])
def test_a_cnn_geometry_that_shrinks_to_nothing(deepself, maps, args, words):
    sheet, store = maps
    before = files_in(sheet.parent)
    result = deepself("train", "--sheet", sheet, "--input", store, "--fold", "1", "--spec", _train_spec("cnn2d", args),
                      "--out-dir", sheet.parent / "model")
    assert_refused(result, words)
    assert files_in(sheet.parent) == before


def test_a_label_not_in_the_class_list_at_training(deepself, maps):
    sheet, store = maps
    frame = pd.read_csv(sheet, dtype=str)
    frame.loc[11, "label"] = "c"
    frame.to_csv(sheet, index=False)
    spec = _train_spec("fnn", {"hidden": [4]}, classes=["a", "b"])
    result = deepself("train", "--sheet", sheet, "--input", store, "--fold", "1", "--spec", spec,
                      "--out-dir", sheet.parent / "m")
    assert_refused(result, "s11", "'c'")


@pytest.mark.parametrize("text, words", [
    ("train: {epochz: 3}", "config key train.epochz: unknown key"),
    ("train: {epochs: ten}", "config key train.epochs: 'ten' is not of type 'integer'"),
    ("models: {m: {arch: cnn2d, feature: f, args: {channels: 4}}}", "config key models.m.args.channels: 4 is not of "
                                                                     "type 'array'"),
    ("data: {adapter: sheet, sheet: s.csv, modalities: {main: {colum: path}}}", "config key data.modalities.main"),
])
def test_a_config_key_misspelt_or_of_the_wrong_type(deepself, tmp_path, text, words):
    base = {"experiment": "x", "data": {"adapter": "digits"}, "features": {"f": {"kind": "raw"}},
            "models": {"m": {"arch": "fnn", "feature": "f"}}}
    import yaml

    config = {**base, **yaml.safe_load(text)}
    (tmp_path / "c.yaml").write_text(yaml.safe_dump(config))
    assert_refused(deepself("check-config", tmp_path / "c.yaml"), words)


# --- predict -----------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    """An FNN of one epoch on 12 wavs of 800 samples at 8 kHz."""
    folder = tmp_path_factory.mktemp("model")
    files = [wav(folder / f"s{i:02d}.wav", seed=i) for i in range(12)]
    sheet = samples_csv(folder, files)
    frame = pd.read_csv(sheet, dtype=str).assign(fold=[str(i % 3 + 1) for i in range(12)])
    frame.to_csv(sheet, index=False)
    ingest(sheet, "main", AUDIO, folder / "raw.h5")
    spec = json.loads(_train_spec("fnn", {"hidden": [4]}))
    train_fold(sheet, folder / "raw.h5", "1", {**spec, "train": {**spec["train"], "epochs": 1}}, folder / "fnn")
    return folder / "fnn" / "checkpoint.pt"


def run_predict(deepself, tmp_path: Path, source: Path, *files) -> subprocess.CompletedProcess:
    before = files_in(tmp_path)
    result = deepself("predict", source, *files, "--out", tmp_path / "out" / "p.csv")
    assert files_in(tmp_path) == before, "predict left a file behind"
    return result


def test_predict_a_path_that_does_not_exist(deepself, tmp_path, checkpoint):
    result = run_predict(deepself, tmp_path, checkpoint, checkpoint.parent.parent / "s00.wav", tmp_path / "nope.wav")
    assert_refused(result, "nope.wav: no such file")


def test_predict_a_file_with_other_channels(deepself, tmp_path, checkpoint):
    result = run_predict(deepself, tmp_path, checkpoint, wav(tmp_path / "stereo.wav", channels=2))
    assert_refused(result, "stereo.wav: 2 channels, the model learned from signals with 1")


@pytest.mark.parametrize("change, words", [
    ("state_dict", "its state_dict does not fit the fnn model its model_args describe (input 1 x 800): Error(s) in "
                   "loading state_dict for FNN: Missing key(s) in state_dict: \"net.1.weight\""),
    ("n_times", "its state_dict does not fit the fnn model its model_args describe (input 1 x 400): Error(s) in "
                "loading state_dict for FNN: size mismatch for net.1.weight"),
    ("arch", "cannot rebuild its model: model args layers: unknown key for arch cnn1d"),
])
def test_predict_with_a_checkpoint_of_another_model(deepself, tmp_path, checkpoint, change, words):
    state = torch.load(checkpoint, weights_only=True)
    if change == "state_dict":  # the weights of another arch under this one's name
        other = create_model("cnn1d", n_chans=1, n_freqs=None, n_times=800, n_outputs=2, channels=[4])
        state["state_dict"] = other.state_dict()
    elif change == "n_times":  # the same arch, for inputs of another length
        state["model_args"] = {**state["model_args"], "n_times": 400}
    else:
        state["model"] = "cnn1d"
    torch.save(state, tmp_path / "other.pt")
    result = run_predict(deepself, tmp_path, tmp_path / "other.pt", checkpoint.parent.parent / "s00.wav")
    assert_refused(result, "other.pt: ", words)


def test_predict_with_a_file_that_is_no_checkpoint(deepself, tmp_path, checkpoint):
    (tmp_path / "model.pt").write_text("not a checkpoint")
    result = run_predict(deepself, tmp_path, tmp_path / "model.pt", checkpoint.parent.parent / "s00.wav")
    assert_refused(result, "model.pt: not a readable deepself checkpoint")


def test_predict_refuses_a_checkpoint_that_would_run_code(deepself, tmp_path, checkpoint):
    """weights_only=True: a pickle that calls a function is refused, not run."""
    import pickle

    class Evil:
        def __reduce__(self):
            return (print, ("this ran",))

    with open(tmp_path / "evil.pt", "wb") as fh:
        pickle.dump({"model": Evil()}, fh, protocol=2)
    result = run_predict(deepself, tmp_path, tmp_path / "evil.pt", checkpoint.parent.parent / "s00.wav")
    assert_refused(result, "evil.pt: not a readable deepself checkpoint")
    assert "this ran" not in result.stdout + result.stderr
