"""Tests of deepself.datasets.adapters and .aeon: sheets of fake layouts, aeon's and scikit-learn's real data."""

from __future__ import annotations

import importlib.util
import os
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest
from PIL import Image

from deepself.datasets import aeon
from deepself.datasets.adapters import (
    ADAPTERS,
    sheet_bonn,
    sheet_digits,
    sheet_esc10,
    sheet_imagefolder,
    static_folds,
)
from deepself.datasets.aeon import sheet_aeon
from deepself.errors import DeepselfError

SHARED_DATA = Path(__file__).resolve().parents[2].parent / "shared" / "data"


def touch(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(b"x")
    return path


def assert_well_formed(sheet, path_columns=("path",)):
    assert sheet["id"].is_unique
    assert list(sheet["id"]) == sorted(sheet["id"])
    for column in path_columns:
        assert all(os.path.isabs(p) and os.path.isfile(p) for p in sheet[column])
    assert all(isinstance(v, str) for column in sheet.columns for v in sheet[column])


# ESC-10 -----------------------------------------------------------------------------------------

@pytest.fixture
def esc_root(tmp_path) -> Path:
    root = tmp_path / "esc10"
    for name in ["001 - Dog bark/1-100032-A.ogg", "001 - Dog bark/1-100032-B.ogg",
                 "001 - Dog bark/3-155312-A.ogg", "002 - Rain/2-101676-A.ogg", "002 - Rain/1-17367-A.OGG"]:
        touch(root / name)
    touch(root / "README.md")
    touch(root / "002 - Rain" / "notes.txt")
    return root


def test_esc10_sheet_has_class_names_official_folds_and_recordings(esc_root):
    sheet = sheet_esc10(esc_root)
    assert_well_formed(sheet)
    assert list(sheet.columns) == ["id", "path", "label", "fold", "group"]
    by_id = sheet.set_index("id")
    assert len(sheet) == 5
    assert by_id.loc["1-100032-B", ["label", "fold", "group"]].tolist() == ["Dog bark", "1", "100032"]
    assert by_id.loc["1-17367-A", "label"] == "Rain"
    assert by_id.loc["2-101676-A", "path"] == str(esc_root / "002 - Rain" / "2-101676-A.ogg")
    assert static_folds("esc10", str(esc_root)) == ["1", "2", "3"] == sorted(sheet["fold"].unique())


@pytest.mark.parametrize(
    "make, reason",
    [(lambda root: None, r"esc10: no such folder"),
     (lambda root: root.mkdir(), r"esc10: holds no ESC-10 clips"),
     (lambda root: touch(root / "Dog bark" / "1-1-A.ogg"), r"Dog bark: class folder name is not"),
     (lambda root: touch(root / "001 - Dog bark" / "dog.ogg"), r"dog\.ogg: clip name is not")],
)
def test_esc10_bad_layouts(tmp_path, make, reason):
    make(tmp_path / "esc10")
    with pytest.raises(DeepselfError, match=reason):
        sheet_esc10(tmp_path / "esc10")


# Bonn -------------------------------------------------------------------------------------------

def test_bonn_sheet_labels_are_set_letters_in_any_case(tmp_path):
    for name in ["Z/Z001.txt", "Z/Z002.txt", "N/N001.TXT", "S/S001.txt", "S/.hidden.txt", "S/readme.md"]:
        touch(tmp_path / "bonn" / name)
    sheet = sheet_bonn(tmp_path / "bonn")
    assert_well_formed(sheet)
    assert list(sheet.columns) == ["id", "path", "label"]
    assert dict(zip(sheet["id"], sheet["label"])) == {"N001": "N", "S001": "S", "Z001": "Z", "Z002": "Z"}
    assert static_folds("bonn", str(tmp_path / "bonn")) is None


def test_bonn_without_segments(tmp_path):
    (tmp_path / "bonn" / "Z").mkdir(parents=True)
    with pytest.raises(DeepselfError, match=r"bonn: holds no Bonn EEG segments"):
        sheet_bonn(tmp_path / "bonn")


# image folder -----------------------------------------------------------------------------------

def test_imagefolder_sheet_folds_are_splits_and_labels_classes(tmp_path):
    root = tmp_path / "faces"
    for name in ["train/happy/1.jpg", "train/happy/2.PNG", "train/sad/1.jpg", "dev/happy/9.bmp",
                 "dev/sad/readme.txt", ".cache/x/1.png"]:
        touch(root / name)
    sheet = sheet_imagefolder(root)
    assert_well_formed(sheet)
    assert list(sheet.columns) == ["id", "path", "label", "fold"]
    assert list(sheet["id"]) == ["dev-happy-9", "train-happy-1", "train-happy-2", "train-sad-1"]
    assert list(sheet["label"]) == ["happy", "happy", "happy", "sad"]
    assert list(sheet["fold"]) == ["dev", "train", "train", "train"]
    assert static_folds("imagefolder", str(root)) == ["dev", "train"]


def test_imagefolder_same_stem_twice_is_a_duplicate_id(tmp_path):
    touch(tmp_path / "img" / "train" / "cat" / "a.png")
    touch(tmp_path / "img" / "train" / "cat" / "a.jpg")
    with pytest.raises(DeepselfError, match=r"img: sample id 'train-cat-a' is given to more than one file"):
        sheet_imagefolder(tmp_path / "img")


# aeon -------------------------------------------------------------------------------------------

def test_aeon_basic_motions_split_into_accelerometer_and_gyroscope(tmp_path):
    sheet = sheet_aeon("BasicMotions", tmp_path, dims={"accel": [0, 1, 2], "gyro": [3, 4, 5]})
    assert_well_formed(sheet, ("accel", "gyro"))
    assert list(sheet.columns) == ["id", "accel", "gyro", "label", "fold"]
    assert len(sheet) == 80
    assert sheet["label"].value_counts().to_dict() == {c: 20 for c in ["Badminton", "Running", "Standing", "Walking"]}
    assert sheet["fold"].value_counts().to_dict() == {"test": 40, "train": 40}
    assert sheet["accel"].iloc[0] == str(tmp_path / "accel" / "BasicMotions_test_000.npy")

    # Against aeon's own loader (imported only here: it is slow).
    from aeon.datasets import load_from_ts_file

    data_dir = Path(importlib.util.find_spec("aeon").submodule_search_locations[0]) / "datasets" / "data"
    X, y = load_from_ts_file(str(data_dir / "BasicMotions" / "BasicMotions_TRAIN.ts"))
    train = sheet[sheet["fold"] == "train"]
    accel = np.stack([np.load(p) for p in train["accel"]])
    gyro = np.stack([np.load(p) for p in train["gyro"]])
    assert accel.dtype == np.float32 and accel.shape == gyro.shape == (40, 100, 3)
    np.testing.assert_allclose(accel, X[:, :3].transpose(0, 2, 1), rtol=1e-6)
    np.testing.assert_allclose(gyro, X[:, 3:].transpose(0, 2, 1), rtol=1e-6)
    assert [label.lower() for label in train["label"]] == [label.lower() for label in y]
    assert static_folds("aeon", "BasicMotions") == ["test", "train"]


def test_aeon_adapter_without_dims_keeps_every_dimension(tmp_path):
    sheet = ADAPTERS["aeon"]("BasicMotions", tmp_path)
    assert list(sheet.columns) == ["id", "path", "label", "fold"]
    assert np.load(sheet["path"].iloc[0]).shape == (100, 6)


@pytest.mark.parametrize(
    "dataset, dims, reason",
    [("NoSuchSet", None, r"aeon data set NoSuchSet: not in .*available: .*BasicMotions"),
     ("../BasicMotions", None, r"is not an aeon data set name"),
     ("BasicMotions", {"accel": [0, 6]}, r"data\.dims\.accel: dimension 6 is not in 0\.\.5"),
     ("BasicMotions", {"label": [0]}, r"modality name 'label'"),
     ("BasicMotions", {"accel": []}, r"data\.dims\.accel: lists no dimensions")],
)
def test_aeon_bad_requests(tmp_path, dataset, dims, reason):
    with pytest.raises(DeepselfError, match=reason):
        sheet_aeon(dataset, tmp_path, dims=dims)


HEADER = "# a comment\n@problemName Toy\n@timeStamps false\n@classLabel true a b\n@data\n"


@pytest.mark.parametrize(
    "train, reason",
    [("1,2,3:4,5,6:a\n1,2,?:4,5,6:b\n", r"Toy_TRAIN\.ts: line 7, dimension 0, value 2: missing value '\?'"),
     ("1,2,3:4,5:a\n", r"Toy_TRAIN\.ts: line 6: dimensions have different lengths"),
     ("1,2,3:4,5,6:a\n1,2:4,5:b\n", r"Toy_TRAIN\.ts: line 7: 2 dimensions of 2 points, but the first case has 2 of 3"),
     ("1,x,3:4,5,6:a\n", r"Toy_TRAIN\.ts: line 6, dimension 0, value 1: 'x' is not a number"),
     ("1,2,3:4,5,6:c\n", r"Toy_TRAIN\.ts: line 6: class label 'c' is not one of @classLabel"),
     ("(0,1),(1,2):a\n", r"Toy_TRAIN\.ts: line 6, dimension 0: time-stamped values"),
     ("", r"Toy_TRAIN\.ts: holds no cases")],
)
def test_ts_parser_names_file_and_line(tmp_path, monkeypatch, train, reason):
    data = tmp_path / "aeon" / "datasets" / "data" / "Toy"
    data.mkdir(parents=True)
    (data / "Toy_TRAIN.ts").write_text(HEADER + train)
    (data / "Toy_TEST.ts").write_text(HEADER + "1,2,3:4,5,6:a\n")
    fake = SimpleNamespace(submodule_search_locations=[str(tmp_path / "aeon")])
    monkeypatch.setattr(aeon.importlib.util, "find_spec", lambda name: fake)
    with pytest.raises(DeepselfError, match=reason):
        sheet_aeon("Toy", tmp_path / "out")


def test_ts_without_class_labels_is_refused(tmp_path, monkeypatch):
    data = tmp_path / "aeon" / "datasets" / "data" / "Toy"
    data.mkdir(parents=True)
    for split in ("TRAIN", "TEST"):
        (data / f"Toy_{split}.ts").write_text("@problemName Toy\n@classLabel false\n@data\n1,2:3,4\n")
    fake = SimpleNamespace(submodule_search_locations=[str(tmp_path / "aeon")])
    monkeypatch.setattr(aeon.importlib.util, "find_spec", lambda name: fake)
    with pytest.raises(DeepselfError, match=r"Toy_TRAIN\.ts: line 3: the data set has no class labels"):
        sheet_aeon("Toy", tmp_path / "out")


# digits -----------------------------------------------------------------------------------------

def test_digits_are_written_as_png_that_round_trip(tmp_path):
    from sklearn.datasets import load_digits

    sheet = sheet_digits(tmp_path)
    assert_well_formed(sheet)
    assert list(sheet.columns) == ["id", "path", "label"]
    assert len(sheet) == 1797
    assert sorted(sheet["label"].unique()) == [str(d) for d in range(10)]
    digits = load_digits()
    pixels = np.stack([np.asarray(Image.open(p)) for p in sheet["path"]])
    assert pixels.dtype == np.uint8 and pixels.shape == (1797, 8, 8)
    np.testing.assert_allclose(pixels, digits.images * 255 / 16, atol=0.5)
    assert list(sheet["label"]) == [str(t) for t in digits.target]
    assert sheet["path"].iloc[5] == str(tmp_path / str(digits.target[5]) / "digit_0005.png")
    assert static_folds("digits", None) is None


# the uniform adapter table ----------------------------------------------------------------------

def test_adapters_share_one_signature(esc_root, tmp_path):
    assert set(ADAPTERS) == {"esc10", "bonn", "imagefolder", "aeon", "digits"}
    assert ADAPTERS["esc10"](str(esc_root), tmp_path / "work").equals(sheet_esc10(esc_root))


def test_adapter_refuses_unknown_option_and_missing_root(esc_root, tmp_path):
    with pytest.raises(DeepselfError, match=r"data\.adapter esc10: unknown option 'dims'"):
        ADAPTERS["esc10"](str(esc_root), tmp_path, dims={"a": [0]})
    with pytest.raises(DeepselfError, match=r"data\.root: adapter bonn needs the data folder"):
        ADAPTERS["bonn"](None, tmp_path)


def test_static_folds_unknown_adapter():
    with pytest.raises(DeepselfError, match=r"unknown adapter 'esc50'; known: esc10"):
        static_folds("esc50", "x")


# the real data sets in ../shared/data ---------------------------------------------------------

@pytest.mark.skipif(not (SHARED_DATA / "esc10").is_dir() or not (SHARED_DATA / "bonn").is_dir(),
                    reason=f"real ESC-10 and Bonn data not found in {SHARED_DATA}")
def test_real_esc10_and_bonn():
    esc = sheet_esc10(SHARED_DATA / "esc10")
    assert_well_formed(esc)
    assert len(esc) == 400
    assert esc["label"].value_counts().to_dict() == dict.fromkeys(esc["label"].unique(), 40)
    assert esc["label"].nunique() == 10 and "Dog bark" in set(esc["label"])
    folds = ["1", "2", "3", "4", "5"]
    assert sorted(esc["fold"].unique()) == folds == static_folds("esc10", str(SHARED_DATA / "esc10"))
    # The official folds keep the clips of one recording together.
    assert (esc.groupby("group")["fold"].nunique() == 1).all()

    bonn = sheet_bonn(SHARED_DATA / "bonn")
    assert_well_formed(bonn)
    assert len(bonn) == 500
    assert bonn["label"].value_counts().to_dict() == dict.fromkeys("ZONFS", 100)
