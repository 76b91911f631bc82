import json

import numpy as np
import pandas as pd
import pytest

from deepself.errors import DeepselfError
from deepself.fusion import fuse_fold, late_fusion


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
