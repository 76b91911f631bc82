"""The probe: a standardised logistic regression, C chosen on the development split, folded into the classifier."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from deepself.errors import DeepselfError
from deepself.probe import C_GRID, check_augment, fit, set_classifier


def _embeddings(n_classes, n=120, d=16, seed=0):
    """Gaussian classes with shifted means on a few dimensions, features on very different scales."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    x = rng.normal(size=(n, d))
    x[np.arange(n), y] += 1.5
    x *= np.geomspace(0.01, 100, d)  # the scaler matters
    return torch.tensor(x, dtype=torch.float32), y


@pytest.mark.parametrize("n_classes", [2, 4])
def test_the_folded_classifier_gives_the_regressions_probabilities(n_classes):
    x, y = _embeddings(n_classes)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(C=0.3, max_iter=5000)).fit(x.double().numpy(), y)
    classifier = nn.Linear(x.shape[1], n_classes)
    set_classifier(classifier, pipeline, n_classes)
    with torch.no_grad():
        proba = torch.softmax(classifier(x), 1).numpy()
    np.testing.assert_allclose(proba, pipeline.predict_proba(x.double().numpy()), atol=1e-5)


def test_c_is_chosen_on_the_dev_split_and_the_held_out_part_is_never_read():
    x, y = _embeddings(3, n=150)
    fit_index, dev_index, test_index = np.arange(0, 90), np.arange(90, 120), np.arange(120, 150)
    classifier = nn.Linear(x.shape[1], 3)
    history, best = fit(classifier, x, y, fit_index, dev_index, 3)
    assert [row["C"] for row in history] == list(C_GRID) and [row["epoch"] for row in history] == [1, 2, 3, 4, 5, 6]
    top = max(row["dev_uar"] for row in history)
    assert best["dev_uar"] == top
    assert best["C"] == min((r for r in history if r["dev_uar"] == top),
                                                     key=lambda r: r["dev_loss"])["C"]
    # the refit uses fit + dev with the chosen C
    pool = np.concatenate([fit_index, dev_index])
    refit = make_pipeline(StandardScaler(), LogisticRegression(C=best["C"], max_iter=5000))
    refit.fit(x.double().numpy()[pool], y[pool])
    with torch.no_grad():
        np.testing.assert_allclose(torch.softmax(classifier(x[test_index]), 1).numpy(),
                                   refit.predict_proba(x.double().numpy()[test_index]), atol=1e-5)
    # other labels and embeddings on the held-out part change nothing
    y_other, x_other = y.copy(), x.clone()
    y_other[test_index] = (y[test_index] + 1) % 3
    x_other[test_index] = 1000.0
    other = nn.Linear(x.shape[1], 3)
    history_other, best_other = fit(other, x_other, y_other, fit_index, dev_index, 3)
    assert history_other == [dict(r, seconds=o["seconds"]) for r, o in zip(history, history_other)]
    torch.testing.assert_close(other.weight, classifier.weight)


def test_augmentation_and_non_finite_embeddings_are_refused():
    hp = {"augment": {"specaugment": None, "shift": 0, "gain_db": 0, "flip": False, "crop_pad": 0, "mixup": 0.2}}
    with pytest.raises(DeepselfError, match=r"train.augment.mixup \(model m\): train_mode probe"):
        check_augment(hp, "m")
    x, y = _embeddings(2)
    x[3, 2] = float("nan")
    with pytest.raises(DeepselfError, match="non-finite embeddings"):
        fit(nn.Linear(x.shape[1], 2), x, y, np.arange(60), np.arange(60, 120), 2)
