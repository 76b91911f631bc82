"""The sample sheet: user sheets are checked, labels renamed, folds assigned stratified and seeded."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from deepself.config import validate_config
from deepself.errors import DeepselfError
from deepself.io.preflight import fold_names
from deepself.io.sheet import build_sheet


def _config(sheet, **data):
    data = {"modalities": {"main": {"column": "path", "sample_rate": 100}}, **data}
    config = {"experiment": "t", "data": {"adapter": "sheet", "sheet": str(sheet), **data},
              "features": {"raw": {"kind": "raw"}}, "models": {"m": {"arch": "fnn", "feature": "raw"}}}
    return validate_config(config)


@pytest.fixture
def sheet(tmp_path):
    rows = []
    for i in range(30):
        (tmp_path / f"x{i}.npy").write_bytes(b"")
        rows.append({"path": f"x{i}.npy", "label": "abc"[i % 3], "group": f"g{i // 2}"})
    path = tmp_path / "sheet.csv"
    pd.DataFrame(rows).to_csv(path, index=False)
    return path


def test_relative_paths_ids_and_stratified_grouped_folds(sheet, tmp_path):
    config = _config(sheet)
    out = build_sheet(config["data"], {**config["cv"], "folds": 3}, tmp_path)
    assert list(out.columns) == ["id", "label", "fold", "group", "path"]
    assert set(out["id"]) == {f"x{i}" for i in range(30)}
    assert all(p.startswith(str(tmp_path)) for p in out["path"])
    assert sorted(out["fold"].unique()) == ["1", "2", "3"]
    for _, part in out.groupby("fold"):
        assert set(part["label"]) == {"a", "b", "c"}
    assert (out.groupby("group")["fold"].nunique() == 1).all(), "a group never spans two folds"
    again = build_sheet(config["data"], {**config["cv"], "folds": 3}, tmp_path)
    pd.testing.assert_frame_equal(out, again)
    other = build_sheet(config["data"], {**config["cv"], "folds": 3, "seed": 7}, tmp_path)
    assert not out["fold"].equals(other["fold"])


def test_tsv_relabel_and_class_order(tmp_path, sheet):
    frame = pd.read_csv(sheet)
    tsv = tmp_path / "sheet.tsv"
    frame.to_csv(tsv, sep="\t", index=False)
    config = _config(tsv, labels={"a": "x", "b": "x"}, classes=["x", "c"])
    out = build_sheet(config["data"], config["cv"], tmp_path)
    assert set(out["label"]) == {"x", "c"}


def test_folds_from_sheet(sheet, tmp_path):
    frame = pd.read_csv(sheet)
    frame["fold"] = np.where(np.arange(30) < 15, "A", "B")
    frame.to_csv(sheet, index=False)
    config = _config(sheet)
    cv = {**config["cv"], "folds": "from_sheet"}
    assert fold_names(config["data"], cv) == ["A", "B"]
    assert fold_names(config["data"], {**cv, "test_folds": ["B"]}) == ["B"]
    with pytest.raises(DeepselfError, match="cv.test_folds: fold 'C' does not exist"):
        fold_names(config["data"], {**cv, "test_folds": ["C"]})
    out = build_sheet(config["data"], cv, tmp_path)
    assert (out.set_index("id").loc["x3", "fold"]) == "A"


@pytest.mark.parametrize("edit, message", [
    (lambda f: f.rename(columns={"label": "class"}), "no column 'label'"),
    (lambda f: f.assign(id=["same"] * len(f)), "duplicate sample id 'same'"),
    (lambda f: f.assign(path=["nope.npy"] + list(f["path"][1:])), "file '.*nope.npy' does not exist"),
    (lambda f: f.assign(label=[""] + list(f["label"][1:])), "has no label"),
])
def test_bad_sheets_are_named(sheet, tmp_path, edit, message):
    edit(pd.read_csv(sheet)).to_csv(sheet, index=False)
    config = _config(sheet)
    with pytest.raises(DeepselfError, match=message):
        build_sheet(config["data"], config["cv"], tmp_path)


def test_label_outside_the_class_list(sheet, tmp_path):
    config = _config(sheet, classes=["a", "b"])
    with pytest.raises(DeepselfError, match="label 'c', which is not in data.classes"):
        build_sheet(config["data"], config["cv"], tmp_path)


def test_class_absent_from_a_training_part(sheet, tmp_path):
    frame = pd.read_csv(sheet)
    frame["fold"] = np.where(frame["label"] == "c", "1", np.where(np.arange(30) % 2, "2", "3"))
    frame.to_csv(sheet, index=False)
    config = _config(sheet)
    with pytest.raises(DeepselfError, match="fold '1': class 'c' is absent from its training part"):
        build_sheet(config["data"], {**config["cv"], "folds": "from_sheet"}, tmp_path)
