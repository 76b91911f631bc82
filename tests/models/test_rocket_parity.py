"""deepself's rockets against aeon's own classifiers on ArrowHead's official split, trained through the trainer.

ArrowHead (aeon ships it: 36 training and 175 test series of 251 samples, 3 classes) is trained
through :func:`deepself.training.fold.train_fold` with the experiment's defaults (``cv.dev_fraction`` 0.2,
``train.normalize: feature``, ``train.seed`` 0), the test split as the held-out fold. aeon's
``MiniRocketClassifier`` / ``MultiRocketClassifier`` (random_state 0, deepself's number of kernels: the transform,
``StandardScaler(with_mean=False)``, ``RidgeClassifierCV(np.logspace(-3, 3, 10))``) see the same
arrays. Before issue 24 (a logistic regression with C chosen on the development split) deepself's
MiniRocket gave aeon's label on 93.7% of the test series.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest
from aeon import datasets

from deepself.config import validate_config
from deepself.io.store import create_store
from deepself.training.fold import train_fold

AEON = {"minirocket": "MiniRocketClassifier", "multirocket": "MultiRocketClassifier", "hydra": "HydraClassifier",
        "multirocket_hydra": "MultiRocketHydraClassifier"}


@pytest.fixture(scope="module")
def arrow_head(tmp_path_factory):
    """ArrowHead as a deepself store and sheet (fold ``train`` and ``test``), its arrays, and a cache of runs."""
    root = tmp_path_factory.mktemp("arrow_head")
    x_train, y_train = datasets.load_arrow_head(split="train")
    x_test, y_test = datasets.load_arrow_head(split="test")
    x = np.concatenate([x_train, x_test]).astype(np.float32)
    ids = [f"s{i:03d}" for i in range(len(x))]
    with create_store(root / "raw.h5", len(x), x.shape[1:], {"kind": "signal", "layout": "CT", "sample_rate": 1.0}) as w:
        w.write(ids, x)
    pd.DataFrame({"id": ids, "label": np.concatenate([y_train, y_test]),
                  "fold": ["train"] * len(x_train) + ["test"] * len(x_test)}).to_csv(root / "samples.csv", index=False)
    return {"root": root, "train": (x_train, y_train), "test": (x_test, y_test), "test_ids": ids[len(x_train):],
            "runs": {}}


def _train(arrow_head, arch: str, dev_fraction: float | None = None) -> tuple[dict, pd.DataFrame]:
    """Train ``arch`` with the experiment's defaults (``dev_fraction`` None: the config's default, 0.2); its
    summary and held-out predictions in test-split order, each run once per module."""
    key = (arch, dev_fraction)
    if key not in arrow_head["runs"]:
        config = validate_config({"experiment": "t", "data": {"adapter": "digits"}, "features": {"f": {"kind": "raw"}},
                                  "models": {"m": {"arch": arch, "feature": "f"}}})
        spec = {"name": arch, "arch": arch, "feature": "raw", "args": config["models"]["m"]["args"], "classes": None,
                "dev_fraction": config["cv"]["dev_fraction"] if dev_fraction is None else dev_fraction,
                "cv_seed": config["cv"]["seed"], "windows": None, "train": config["train"]}
        out = arrow_head["root"] / f"{arch}_{dev_fraction}"
        train_fold(arrow_head["root"] / "samples.csv", arrow_head["root"] / "raw.h5", "test", spec, out)
        predictions = pd.read_csv(out / "predictions.csv", dtype={"id": str, "label": str, "pred": str})
        arrow_head["runs"][key] = (json.loads((out / "summary.json").read_text()),
                                   predictions.set_index("id").loc[arrow_head["test_ids"]])
    return arrow_head["runs"][key]


@pytest.mark.parametrize("arch", list(AEON))
def test_the_rocket_gives_aeons_labels(arrow_head, arch):
    from aeon.classification import convolution_based

    x_train, y_train = arrow_head["train"]
    x_test, y_test = arrow_head["test"]
    summary, predictions = _train(arrow_head, arch)
    # deepself's defaults are aeon's classifiers' (MultiRocket: 10,000 kernels; its transform alone, as
    # MultiRocketHydraClassifier keeps it: 6,250; Hydra: 8 kernels a group; aeon's MR-Hydra's n_kernels is Hydra's)
    args = validate_config({"experiment": "t", "data": {"adapter": "digits"}, "features": {"f": {"kind": "raw"}},
                            "models": {"m": {"arch": arch, "feature": "f"}}})["models"]["m"]["args"]
    kernels = args["hydra_kernels"] if arch == "multirocket_hydra" else args["n_kernels"]
    aeon = getattr(convolution_based, AEON[arch])(n_kernels=kernels, random_state=0, n_jobs=1).fit(x_train, y_train)
    aeon = aeon.predict(x_test)
    agreement = np.mean(predictions["pred"].to_numpy() == aeon)
    assert agreement >= 0.99, f"{arch} gives aeon's label on {agreement:.1%} of ArrowHead's test series"
    assert summary["n_dev"] == 0 and summary["n_train"] == 36 and summary["head"]["cv"].startswith("leave-one-out")


def test_the_development_fraction_does_not_change_the_head(arrow_head):
    """The configured development split is not used by a rocket: any fraction gives the same model."""
    _, default = _train(arrow_head, "minirocket")
    _, other = _train(arrow_head, "minirocket", dev_fraction=0.5)
    pd.testing.assert_frame_equal(default, other)


def test_the_rockets_probabilities_are_calibrated_and_move_a_fusion(arrow_head):
    """Where the rocket errs, its probabilities say so (mean top probability < 0.99: 0.82 at 86%
    accuracy), so a fused model's other member can overturn its wrong labels: averaged with a member
    that puts 0.7 on the true class, the rocket's label changes on some test series."""
    from deepself.scoring.fusion import late_fusion

    summary, predictions = _train(arrow_head, "minirocket")
    proba = predictions.filter(like="p_").to_numpy()
    classes = [c[2:] for c in predictions.filter(like="p_").columns]
    truth = np.array([classes.index(label) for label in predictions["label"]])
    assert (proba.argmax(1) != truth).any()  # it errs on this set
    assert proba.max(1).mean() < 0.99 and summary["test_mean_top_probability"] == pytest.approx(proba.max(1).mean())
    assert summary["dev_mean_top_probability"] < 0.99 and summary["head"]["temperature"] > 0.01
    other = np.full_like(proba, 0.15)
    other[np.arange(len(truth)), truth] = 0.7
    fused = late_fusion([proba, other])
    assert (fused.argmax(1) != proba.argmax(1)).any()
    assert (fused.argmax(1) == truth).mean() > (proba.argmax(1) == truth).mean()
