import numpy as np
import pandas as pd
import pytest

from deepself.report import make_report


def _predictions(tmp_path, name, fold, labels, preds):
    frame = pd.DataFrame({"id": [f"{fold}-{i}" for i in range(len(labels))], "fold": fold, "label": labels,
                          "pred": preds})
    for c in ["a", "b"]:
        frame[f"p_{c}"] = (frame["pred"] == c).astype(float)
    path = tmp_path / f"{name}_{fold}.csv"
    frame.to_csv(path, index=False)
    return str(path)


def test_report_tables(tmp_path):
    # fold 1: a recalled 2/2, b 1/2 -> UAR 0.75; fold 2: a 1/2, b 2/2 -> 0.75; fold 3: a 0/1, b 1/1 -> 0.5
    paths = [_predictions(tmp_path, "m", "1", list("aabb"), list("aaba")),
             _predictions(tmp_path, "m", "2", list("aabb"), list("abbb")),
             _predictions(tmp_path, "m", "3", list("ab"), list("bb"))]
    history = tmp_path / "h.csv"
    pd.DataFrame({"epoch": [1, 2], "train_loss": [1.0, 0.5], "dev_uar": [0.5, 0.7]}).to_csv(history, index=False)
    summary = make_report({"m": {"kind": "model", "predictions": paths, "histories": [str(history)]}},
                          tmp_path / "report", "demo")
    row = summary.iloc[0]
    assert row["uar_mean"] == pytest.approx(2 / 3)
    assert row["uar_sd"] == pytest.approx(np.std([0.75, 0.75, 0.5], ddof=1))
    per_class = pd.read_csv(tmp_path / "report" / "per_class.csv").set_index("class")
    assert per_class.loc["a", "recall"] == pytest.approx(3 / 5)  # pooled: 2 + 1 + 0 of 5
    assert per_class.loc["b", "recall"] == pytest.approx(4 / 5)
    assert per_class.loc["a", "recall_fold_mean"] == pytest.approx(0.5)
    per_fold = pd.read_csv(tmp_path / "report" / "uar_per_fold.csv")
    assert list(per_fold["uar"]) == pytest.approx([0.75, 0.75, 0.5])
    text = (tmp_path / "report" / "report.md").read_text()
    assert "| m | model |  | 66.7 ± 14.4 | 3 | 10 |" in text
    for png in ["uar.png", "curves.png", "confusion_m.png"]:
        assert (tmp_path / "report" / png).read_bytes()[:4] == b"\x89PNG"


def test_one_held_out_fold_shows_no_spread(tmp_path):
    # a fixed train/dev split (FER-2013's dev): one fold, UAR (1 + 1/2) / 2, and no "± nan"
    paths = [_predictions(tmp_path, "m", "dev", list("aabb"), list("aaba"))]
    summary = make_report({"m": {"kind": "model", "predictions": paths, "histories": []}}, tmp_path / "report", "demo")
    assert np.isnan(summary.iloc[0]["uar_sd"])
    text = (tmp_path / "report" / "report.md").read_text()
    assert "| m | model |  | 75.0 | 1 | 4 |" in text and "nan" not in text
