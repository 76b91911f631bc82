import json

import numpy as np
import pandas as pd
import pytest

from deepself.errors import DeepselfError
from deepself.scoring.fusion import fuse_fold, late_fusion


def test_late_fusion_arithmetic():
    a = np.array([[0.9, 0.1], [0.2, 0.8]])
    b = np.array([[0.3, 0.7], [0.4, 0.6]])
    np.testing.assert_allclose(late_fusion([a, b]), [[0.6, 0.4], [0.3, 0.7]])
    np.testing.assert_allclose(late_fusion([a, b], [3, 1]), [[0.75, 0.25], [0.25, 0.75]])
    with pytest.raises(DeepselfError):
        late_fusion([a, b], [0, 0])


def _write(tmp_path, name, ids, proba, dev_uar):
    frame = pd.DataFrame({"id": ids, "fold": "1", "label": ["x", "y", "x"], "pred": "x"})
    frame["p_x"], frame["p_y"] = proba[:, 0], proba[:, 1]
    frame.to_csv(tmp_path / f"{name}.csv", index=False)
    (tmp_path / f"{name}.json").write_text(json.dumps({"dev_uar": dev_uar}))
    return str(tmp_path / f"{name}.csv"), str(tmp_path / f"{name}.json")


def test_fuse_fold_aligns_ids_and_weighs_by_dev_uar(tmp_path):
    pa, sa = _write(tmp_path, "a", ["s1", "s2", "s3"], np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]]), 0.9)
    # model b lists the same samples in another order
    pb, sb = _write(tmp_path, "b", ["s3", "s1", "s2"], np.array([[0.1, 0.9], [0.3, 0.7], [0.6, 0.4]]), 0.3)
    fused = fuse_fold([pa, pb], [sa, sb], "weighted", tmp_path / "out.csv")
    expected = (0.9 * np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])
                + 0.3 * np.array([[0.3, 0.7], [0.6, 0.4], [0.1, 0.9]])) / 1.2
    np.testing.assert_allclose(fused[["p_x", "p_y"]].to_numpy(), expected)
    assert list(fused["pred"]) == ["x", "y", "y"]
    assert (tmp_path / "out.csv").exists()


def test_fuse_fold_refuses_different_samples(tmp_path):
    pa, sa = _write(tmp_path, "a", ["s1", "s2", "s3"], np.full((3, 2), 0.5), 0.5)
    pb, sb = _write(tmp_path, "b", ["s1", "s2", "s4"], np.full((3, 2), 0.5), 0.5)
    with pytest.raises(DeepselfError, match="holds other samples"):
        fuse_fold([pa, pb], [sa, sb], "mean", tmp_path / "out.csv")
    assert not (tmp_path / "out.csv").exists()


def test_weighted_fusion_leaves_no_file_open(tmp_path):
    """Every summary.json is closed once read (a ResourceWarning would say otherwise)."""
    import gc
    import sys
    import warnings

    pa, sa = _write(tmp_path, "a", ["s1", "s2", "s3"], np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]]), 0.9)
    pb, sb = _write(tmp_path, "b", ["s1", "s2", "s3"], np.array([[0.1, 0.9], [0.6, 0.4], [0.5, 0.5]]), 0.3)
    unraisable = []
    hook, sys.unraisablehook = sys.unraisablehook, unraisable.append
    try:
        with warnings.catch_warnings():
            # a file closed by the garbage collector warns from its __del__: the hook gets it
            warnings.simplefilter("error", ResourceWarning)
            fuse_fold([pa, pb], [sa, sb], "weighted", tmp_path / "out.csv")
            gc.collect()
    finally:
        sys.unraisablehook = hook
    assert not unraisable, [str(u.exc_value) for u in unraisable]


def test_top_fuses_only_the_members_best_on_development(tmp_path):
    probas = {"a": [[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]], "b": [[0.1, 0.9], [0.9, 0.1], [0.2, 0.8]],
              "c": [[0.6, 0.4], [0.4, 0.6], [0.3, 0.7]]}
    dev = {"a": 0.8, "b": 0.2, "c": 0.8}
    paths = [_write(tmp_path, n, ["s1", "s2", "s3"], np.array(p), dev[n]) for n, p in probas.items()]
    preds, sums = [p for p, _ in paths], [s for _, s in paths]
    fused = fuse_fold(preds, sums, "mean", tmp_path / "top.csv", top=2)
    # b has the lowest development UAR: a and c are fused, equally
    np.testing.assert_allclose(fused[["p_x", "p_y"]].to_numpy(), (np.array(probas["a"]) + probas["c"]) / 2)
    # a tie keeps the model named first
    one = fuse_fold(preds, sums, "weighted", tmp_path / "one.csv", top=1)
    np.testing.assert_allclose(one[["p_x", "p_y"]].to_numpy(), probas["a"])
    with pytest.raises(DeepselfError, match="top: 4"):
        fuse_fold(preds, sums, "mean", tmp_path / "bad.csv", top=4)
    assert not (tmp_path / "bad.csv").exists()


# --- the weights each fold's fusion writes, and ensemble selection (issue 24, item 3) -------------

from deepself.scoring.fusion import read_weights  # noqa: E402
from deepself.scoring.metrics import uar  # noqa: E402
from deepself.scoring.selection import ensemble_selection, log_loss, member_weights  # noqa: E402

CLASSES = ["x", "y", "z"]


def _frame(ids, labels, proba, fold="1"):
    frame = pd.DataFrame({"id": ids, "fold": fold, "label": labels,
                          "pred": [CLASSES[i] for i in np.asarray(proba).argmax(1)]})
    for c, name in enumerate(CLASSES):
        frame[f"p_{name}"] = np.asarray(proba)[:, c]
    return frame


def _noise(rng, n):
    return rng.dirichlet(np.ones(len(CLASSES)), size=n)


def _confident(y, p=0.8):
    proba = np.full((len(y), len(CLASSES)), (1 - p) / (len(CLASSES) - 1))
    proba[np.arange(len(y)), y] = p
    return proba


def _fold(tmp_path, dev: dict, held_out: dict, dev_uar: dict, n_dev=30, n_test=12, seed=0):
    """models/<m>/fold1/{predictions,dev_predictions}.csv and summary.json of each member, as training
    writes them; ``dev`` and ``held_out``: member -> function (rng, true class indices) -> probabilities."""
    rng = np.random.default_rng(seed)
    y_dev, y_test = np.arange(n_dev) % 3, rng.integers(0, 3, n_test)
    paths = {"predictions": [], "summaries": [], "dev": []}
    for name in dev:
        folder = tmp_path / "models" / name / "fold1"
        folder.mkdir(parents=True)
        _frame([f"t{i:02d}" for i in range(n_dev)], [CLASSES[i] for i in y_dev],
               dev[name](rng, y_dev)).to_csv(folder / "dev_predictions.csv", index=False)
        _frame([f"h{i:02d}" for i in range(n_test)], [CLASSES[i] for i in y_test],
               held_out[name](rng, y_test)).to_csv(folder / "predictions.csv", index=False)
        (folder / "summary.json").write_text(json.dumps({"dev_uar": dev_uar[name]}))
        for key, file in (("predictions", "predictions.csv"), ("summaries", "summary.json"),
                          ("dev", "dev_predictions.csv")):
            paths[key].append(str(folder / file))
    return paths


def _select(tmp_path, paths, out="fused/fold1/predictions.csv", **options):
    return fuse_fold(paths["predictions"], paths["summaries"], "select", tmp_path / out,
                     dev_prediction_paths=paths["dev"], **options)


def test_every_method_writes_its_weights_beside_the_predictions(tmp_path):
    paths = _fold(tmp_path, {m: lambda r, y: _noise(r, len(y)) for m in "abc"},
                  {m: lambda r, y: _noise(r, len(y)) for m in "abc"}, {"a": 0.5, "b": 0.25, "c": 0.25})
    for method, top, expected in (("mean", None, [1 / 3] * 3), ("weighted", None, [0.5, 0.25, 0.25]),
                                  ("mean", 1, [1, 0, 0])):
        out = tmp_path / method / str(top) / "predictions.csv"
        fuse_fold(paths["predictions"], paths["summaries"], method, out, top=top)
        record = json.loads((out.parent / "weights.json").read_text())
        assert list(record["weights"]) == ["a", "b", "c"]
        np.testing.assert_allclose(list(record["weights"].values()), expected)
        assert (record["method"], record["top"], record["rounds"]) == (method, top, None)


def test_select_recovers_a_planted_best_member(tmp_path):
    """One member is right on every development sample, the others are noise: select gives it all the weight."""
    dev = {"noise1": lambda r, y: _noise(r, len(y)), "perfect": lambda r, y: _confident(y),
           "noise2": lambda r, y: _noise(r, len(y))}
    paths = _fold(tmp_path, dev, {m: lambda r, y: _noise(r, len(y)) for m in dev}, dict.fromkeys(dev, 0.5))
    fused = _select(tmp_path, paths)
    record = json.loads((tmp_path / "fused" / "fold1" / "weights.json").read_text())
    assert record["weights"] == {"noise1": 0.0, "perfect": 1.0, "noise2": 0.0}
    assert record["rounds"] == 25 and record["selection"]["n_samples"] == 30
    assert record["selection"]["dev_uar"] == 1.0
    held_out = pd.read_csv(paths["predictions"][1])
    np.testing.assert_allclose(fused[["p_x", "p_y", "p_z"]].to_numpy(), held_out[["p_x", "p_y", "p_z"]].to_numpy())


@pytest.mark.parametrize("seed", range(8))
def test_select_is_never_worse_than_the_best_member_on_development(seed):
    rng = np.random.default_rng(seed)
    y = np.arange(45) % 3
    # members that are each right on part of the samples, and wrong elsewhere
    members = [np.where(rng.random((45, 1)) < q, _confident(y, 0.6), _noise(rng, 45)) for q in (0.3, 0.5, 0.6, 0.4)]
    result = ensemble_selection(members, y, rounds=10)
    best = max(uar(y, m.argmax(1), 3) for m in members)
    fused = sum(w * m for w, m in zip(result["weights"], members))
    assert uar(y, fused.argmax(1), 3) == result["dev_uar"] >= best
    assert result["member_dev_uar"] == [uar(y, m.argmax(1), 3) for m in members]
    np.testing.assert_allclose(result["weights"].sum(), 1.0)
    picks = result["weights"] * result["rounds_kept"]  # times each member was picked in the kept rounds
    np.testing.assert_allclose(picks, np.round(picks), atol=1e-9)


def test_select_ties_go_to_the_lower_log_loss_then_to_the_member_named_first():
    y = np.arange(12) % 3
    timid, sure = _confident(y, 0.5), _confident(y, 0.9)  # both right on every sample: the same UAR
    assert log_loss(sure, y) < log_loss(timid, y)
    np.testing.assert_allclose(ensemble_selection([timid, sure], y, rounds=5)["weights"], [0, 1])
    np.testing.assert_allclose(ensemble_selection([sure, timid], y, rounds=5)["weights"], [1, 0])
    # the same predictions twice: the first one named
    np.testing.assert_allclose(ensemble_selection([sure, sure.copy(), timid], y, rounds=5)["weights"], [1, 0, 0])


def test_select_learns_a_blend_when_it_beats_every_member():
    """Two members each right on a different half of the classes' samples: their mean is right on more."""
    y = np.arange(12) % 2
    a = np.where((np.arange(12) < 6)[:, None], np.eye(2)[y] * 0.8 + 0.1, np.eye(2)[1 - y] * 0.55 + 0.225)
    b = np.where((np.arange(12) >= 6)[:, None], np.eye(2)[y] * 0.8 + 0.1, np.eye(2)[1 - y] * 0.55 + 0.225)
    result = ensemble_selection([a, b], y, rounds=4)
    assert result["dev_uar"] == 1.0 > max(result["member_dev_uar"])
    np.testing.assert_allclose(result["weights"], [0.5, 0.5])


def test_select_never_reads_the_held_out_labels(tmp_path):
    """Scrambled held-out labels give the same weights and the same fused probabilities."""
    dev = {"a": lambda r, y: np.where(r.random((len(y), 1)) < 0.7, _confident(y), _noise(r, len(y))),
           "b": lambda r, y: np.where(r.random((len(y), 1)) < 0.5, _confident(y), _noise(r, len(y))),
           "c": lambda r, y: _noise(r, len(y))}
    paths = _fold(tmp_path, dev, {m: lambda r, y: _noise(r, len(y)) for m in dev}, dict.fromkeys(dev, 0.5))
    fused = _select(tmp_path, paths, out="one/predictions.csv")
    for path in paths["predictions"]:
        frame = pd.read_csv(path)
        frame["label"] = list(reversed(["z" if label == "x" else "x" for label in frame["label"]]))
        frame.to_csv(path, index=False)
    again = _select(tmp_path, paths, out="two/predictions.csv")
    weights = [json.loads((tmp_path / d / "weights.json").read_text())["weights"] for d in ("one", "two")]
    assert weights[0] == weights[1]
    pd.testing.assert_frame_equal(fused.drop(columns="label"), again.drop(columns="label"))


def test_select_uses_the_samples_every_member_predicted(tmp_path):
    """A fitted head predicts the whole training part, a network its development split: their ids differ."""
    paths = _fold(tmp_path, {m: lambda r, y: _noise(r, len(y)) for m in "ab"},
                  {m: lambda r, y: _noise(r, len(y)) for m in "ab"}, dict.fromkeys("ab", 0.5))
    frame = pd.read_csv(paths["dev"][1])
    frame.iloc[:12].to_csv(paths["dev"][1], index=False)  # b predicted 12 of the 30
    _select(tmp_path, paths)
    assert json.loads((tmp_path / "fused" / "fold1" / "weights.json").read_text())["selection"]["n_samples"] == 12


def test_select_refuses_development_predictions_it_cannot_use(tmp_path):
    paths = _fold(tmp_path, {m: lambda r, y: _noise(r, len(y)) for m in "ab"},
                  {m: lambda r, y: _noise(r, len(y)) for m in "ab"}, dict.fromkeys("ab", 0.5))
    out = tmp_path / "bad" / "predictions.csv"
    with pytest.raises(DeepselfError, match="give every model's dev_predictions.csv"):
        fuse_fold(paths["predictions"], paths["summaries"], "select", out)
    good = pd.read_csv(paths["dev"][1])
    no_z = good[good["label"] != "z"]
    cases = [(no_z, rf"the {len(no_z)} development samples that every member predicted hold 0 of class 'z'; "
                    r"method select needs at least 1 of every class: raise cv.dev_fraction"),
             (pd.concat([good, pd.read_csv(paths["predictions"][1]).head(1)]), r"sample 'h00' is of the held-out fold"),
             (good.drop(columns="p_z"), r"b/fold1/dev_predictions.csv: classes differ"),
             (good.assign(label=["y", *good["label"][1:]]), r"sample 't00' has another label than in")]
    for frame, message in cases:
        frame.to_csv(paths["dev"][1], index=False)
        with pytest.raises(DeepselfError, match=message):
            _select(tmp_path, paths, out="bad/predictions.csv")
    (tmp_path / "models" / "b" / "fold1" / "dev_predictions.csv").unlink()
    with pytest.raises(DeepselfError, match=r"b/fold1/dev_predictions.csv: no such file; method select learns"):
        _select(tmp_path, paths, out="bad/predictions.csv")
    assert not out.exists() and not (out.parent / "weights.json").exists()


def test_top_restricts_the_candidates_of_select(tmp_path):
    """top keeps the members best on development UAR (summary.json); select picks among them only."""
    dev = {"perfect": lambda r, y: _confident(y), "a": lambda r, y: _noise(r, len(y)),
           "b": lambda r, y: _noise(r, len(y))}
    paths = _fold(tmp_path, dev, {m: lambda r, y: _noise(r, len(y)) for m in dev},
                  {"perfect": 0.1, "a": 0.6, "b": 0.5})
    _select(tmp_path, paths, top=2, rounds=7)
    record = json.loads((tmp_path / "fused" / "fold1" / "weights.json").read_text())
    assert record["weights"]["perfect"] == 0.0 and record["top"] == 2 and record["rounds"] == 7
    assert record["selection"]["member_dev_uar"]["perfect"] is None


def test_weights_json_must_fit_the_fusion_of_the_config(tmp_path):
    path = tmp_path / "weights.json"
    path.write_text(json.dumps({"method": "select", "top": None, "rounds": 25, "weights": {"a": 0.25, "b": 0.75}}))
    np.testing.assert_array_equal(read_weights(path, ["b", "a"], {"method": "select", "rounds": 25}), [0.75, 0.25])
    for spec, members in (({"method": "mean"}, ["a", "b"]), ({"method": "select", "rounds": 5}, ["a", "b"]),
                          ({"method": "select", "rounds": 25}, ["a", "c"])):
        with pytest.raises(DeepselfError, match=r"weights.json: written for another fusion .* run the workflow"):
            read_weights(path, members, spec)
    path.write_text("{")
    with pytest.raises(DeepselfError, match=r"weights.json: cannot be read"):
        read_weights(path, ["a", "b"], {"method": "select"})


def test_member_weights_of_every_method():
    np.testing.assert_allclose(member_weights("mean", 3)[0], [1 / 3] * 3)
    np.testing.assert_allclose(member_weights("weighted", 2, [0.6, 0.2])[0], [0.75, 0.25])
    np.testing.assert_allclose(member_weights("weighted", 3, [0.6, 0.2, 0.4], top=2)[0], [0.6, 0, 0.4])
    with pytest.raises(DeepselfError, match="not one of mean, weighted, select"):
        member_weights("median", 2)


def test_deepself_fuse_select_command(tmp_path):
    """`deepself fuse --method select --dev-predictions ... --rounds N` as the fuse rule calls it."""
    import subprocess
    import sys

    dev = {"a": lambda r, y: _noise(r, len(y)), "b": lambda r, y: _confident(y)}
    paths = _fold(tmp_path, dev, {m: lambda r, y: _noise(r, len(y)) for m in dev}, dict.fromkeys(dev, 0.5))
    out = tmp_path / "fusions" / "f" / "fold1" / "predictions.csv"
    command = [sys.executable, "-m", "deepself", "--log", str(tmp_path / "fuse.log"), "fuse",
               "--predictions", *paths["predictions"], "--summaries", *paths["summaries"], "--method", "select",
               "--rounds", "3", "--dev-predictions", *paths["dev"], "--out", str(out)]
    result = subprocess.run(command, capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    record = json.loads((out.parent / "weights.json").read_text())
    assert record["weights"] == {"a": 0.0, "b": 1.0} and record["rounds"] == 3
    assert "fold 1: fusion weights a 0.000, b 1.000 (select, round 1 of 3 kept" in (tmp_path / "fuse.log").read_text()


def test_a_missing_member_predictions_file_is_one_line(tmp_path):
    out = tmp_path / "fused.csv"
    missing = tmp_path / "models" / "m" / "fold1" / "predictions.csv"
    with pytest.raises(DeepselfError, match=r"predictions.csv: no such file; run the workflow \(snakemake\) again"):
        fuse_fold([str(missing), str(missing)], [], "mean", out)
    assert not out.exists()
