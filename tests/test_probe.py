"""Fitted heads: the probe's logistic regression (C by cross-validation over the training part, folded into
the classifier) and the rockets' ridge (aeon's RidgeClassifierCV, with a softmax temperature)."""

import numpy as np
import pytest
import torch
from sklearn.linear_model import LogisticRegression, RidgeClassifierCV
from sklearn.metrics import balanced_accuracy_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from deepself.errors import DeepselfError
from deepself.models.rocket import RocketHead
from deepself.training import ridge
from deepself.training.probe import C_GRID, Part, check_augment, fit, set_classifier


def _embeddings(n_classes, n=120, d=16, seed=0):
    """Gaussian classes with shifted means on a few dimensions, features on very different scales."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % n_classes
    x = rng.normal(size=(n, d))
    x[np.arange(n), y] += 1.5
    x *= np.geomspace(0.01, 100, d)  # the scaler matters
    return torch.tensor(x, dtype=torch.float32), y


def _one_informative_dimension(seed=0, n=80, d=40):
    """Two classes apart on dimension 0 only, 39 dimensions of noise: the regularisation matters."""
    rng = np.random.default_rng(seed)
    y = np.arange(n) % 2
    x = rng.normal(size=(n, d))
    x[:, 0] += 1.6 * (2 * y - 1)
    return x, y


@pytest.mark.parametrize("n_classes", [2, 4])
def test_the_folded_classifier_gives_the_regressions_probabilities(n_classes):
    x, y = _embeddings(n_classes)
    pipeline = make_pipeline(StandardScaler(), LogisticRegression(C=0.3, max_iter=5000)).fit(x.double().numpy(), y)
    classifier = nn.Linear(x.shape[1], n_classes)
    set_classifier(classifier, pipeline, n_classes)
    with torch.no_grad():
        proba = torch.softmax(classifier(x), 1).numpy()
    np.testing.assert_allclose(proba, pipeline.predict_proba(x.double().numpy()), atol=1e-5)


def test_c_is_chosen_by_cross_validation_where_a_single_development_split_ties():
    """On this data a development split of 16 samples gives every C the same UAR (the old rule then took
    C 0.1, the least development log-loss); 5-fold cross-validation over all 80 does not tie: C 10 and
    100 share the best UAR, and the smaller, 10, is taken."""
    x, y = _one_informative_dimension()
    fit_index, dev_index = np.arange(64), np.arange(64, 80)
    single_split = [balanced_accuracy_score(y[dev_index], make_pipeline(StandardScaler(), LogisticRegression(
        C=c, max_iter=5000)).fit(x[fit_index], y[fit_index]).predict(x[dev_index])) for c in C_GRID]
    assert len(set(single_split)) == 1  # the tie a single development split gives
    history, best, proba = fit(nn.Linear(40, 2), torch.tensor(x, dtype=torch.float32), Part.of_samples(np.arange(80), y),
                               2, seed=0)
    folds = StratifiedKFold(5, shuffle=True, random_state=0)
    for row, c in zip(history, C_GRID, strict=True):  # each C's UAR is that of its out-of-fold predictions
        expected = cross_val_predict(make_pipeline(StandardScaler(), LogisticRegression(C=c, max_iter=5000)), x, y,
                                     cv=folds)
        assert row["dev_uar"] == pytest.approx(balanced_accuracy_score(y, expected))
    assert len({row["dev_uar"] for row in history}) > 1
    assert best["C"] == 10.0 and history[-1]["dev_uar"] == best["dev_uar"]  # C 100 ties; the smaller wins
    assert proba.shape == (80, 2) and best["dev_uar"] == pytest.approx(balanced_accuracy_score(y, proba.argmax(1)))


def test_ties_go_to_the_strongest_regularisation():
    x, y = _embeddings(3, n=90)  # well apart: every C classifies every out-of-fold sample right
    x[np.arange(90), y] += 20.0
    history, best, _ = fit(nn.Linear(16, 3), x, Part.of_samples(np.arange(90), y), 3)
    assert [row["dev_uar"] for row in history] == [1.0] * len(C_GRID)
    assert best["C"] == min(C_GRID) and best["epoch"] == 1


def test_the_head_is_refitted_on_the_whole_training_part_and_the_held_out_part_is_never_read():
    x, y = _embeddings(3, n=150)
    part, test_index = Part.of_samples(np.arange(120), y[:120]), np.arange(120, 150)
    classifier = nn.Linear(x.shape[1], 3)
    history, best, _ = fit(classifier, x, part, 3)
    assert [row["C"] for row in history] == list(C_GRID) and [row["epoch"] for row in history] == [1, 2, 3, 4, 5, 6]
    refit = make_pipeline(StandardScaler(), LogisticRegression(C=best["C"], max_iter=5000))
    refit.fit(x.double().numpy()[:120], y[:120])
    with torch.no_grad():
        np.testing.assert_allclose(torch.softmax(classifier(x[test_index]), 1).numpy(),
                                   refit.predict_proba(x.double().numpy()[test_index]), atol=1e-5)
    x_other = x.clone()
    x_other[test_index] = 1000.0  # other embeddings of the held-out part change nothing
    other = nn.Linear(x.shape[1], 3)
    history_other, _, _ = fit(other, x_other, part, 3)
    assert history_other == [dict(r, seconds=o["seconds"]) for r, o in zip(history, history_other)]
    torch.testing.assert_close(other.weight, classifier.weight)


def test_groups_never_straddle_the_cross_validation():
    _, y = _embeddings(2, n=40)
    groups = np.repeat(np.arange(10), 4)  # classes alternate within a group: each group holds both
    part = Part.of_samples(np.arange(40), y, groups)
    folds = part.folds(5, seed=0)
    assert sorted(np.concatenate([test for _, test in folds]).tolist()) == list(range(40))
    for train, test in folds:
        assert not set(groups[train]) & set(groups[test])
    with pytest.raises(DeepselfError, match="needs 2"):
        Part.of_samples(np.arange(3), np.array([0, 1, 1])).folds(5, seed=0)


def test_augmentation_and_non_finite_embeddings_are_refused():
    hp = {"augment": {"specaugment": None, "shift": 0, "gain_db": 0, "flip": False, "crop_pad": 0, "mixup": 0.2}}
    with pytest.raises(DeepselfError, match=r"train.augment.mixup \(model m\): train_mode probe"):
        check_augment(hp, "m")
    x, y = _embeddings(2)
    x[3, 2] = float("nan")
    with pytest.raises(DeepselfError, match="non-finite embeddings"):
        fit(nn.Linear(x.shape[1], 2), x, Part.of_samples(np.arange(120), y), 2)


# --- the ridge --------------------------------------------------------------------------------------

@pytest.mark.parametrize("n_classes", [2, 3])
def test_the_ridge_is_aeons_and_the_head_gives_its_decisions_over_the_temperature(n_classes):
    """alpha, coefficients and decision values as aeon's ``StandardScaler(with_mean=False)`` +
    ``RidgeClassifierCV(np.logspace(-3, 3, 10))`` fits them on the same features."""
    x, y = _embeddings(n_classes, n=60, d=200)
    features = x.double().numpy()
    scaler = StandardScaler(with_mean=False).fit(features)
    aeon = RidgeClassifierCV(alphas=np.logspace(-3, 3, 10)).fit(scaler.transform(features), y)
    head = RocketHead(200, n_classes)
    history, best, proba = ridge.fit_ridge(head, x, Part.of_samples(np.arange(60), y), n_classes)
    assert best["alpha"] == aeon.alpha_ and [row["alpha"] for row in history] == sorted(np.logspace(-3, 3, 10))
    assert best["cv"] == "leave-one-out over 60 recordings"
    decision = aeon.decision_function(scaler.transform(features)).reshape(60, -1)
    with torch.no_grad():
        logits = head(x).double().numpy() * best["temperature"]
    np.testing.assert_allclose(logits if n_classes > 2 else logits[:, 1:] - logits[:, :1], decision, atol=2e-4)
    assert proba.shape == (60, n_classes) and np.allclose(proba.sum(1), 1.0)


def test_the_temperature_minimises_the_out_of_sample_log_loss():
    """T is fitted on the leave-one-out decision values: its probabilities have less log-loss than T 1,
    and than a sharper or softer T; they are not all ~1 where the ridge errs."""
    from sklearn.metrics import log_loss

    x, y = _one_informative_dimension(seed=3, n=60, d=300)
    head = RocketHead(300, 2)
    history, best, proba = ridge.fit_ridge(head, torch.tensor(x, dtype=torch.float32), Part.of_samples(np.arange(60), y),
                                           2)
    assert best["dev_uar"] < 1.0 and proba.max(1).mean() < 0.99
    scaler = StandardScaler(with_mean=False).fit(x)
    loo = RidgeClassifierCV(alphas=[best["alpha"]], scoring="neg_mean_squared_error", store_cv_results=True).fit(
        scaler.transform(x), y).cv_results_[:, 0, 0]  # each sample's decision value without it
    z = ridge.logits(loo)
    assert best["dev_loss"] == pytest.approx(log_loss(y, ridge.softmax(z / best["temperature"])), rel=1e-6)
    for t in (1.0, 0.7 * best["temperature"], 1.4 * best["temperature"]):
        assert best["dev_loss"] < log_loss(y, ridge.softmax(z / t))


def test_windows_choose_alpha_by_k_fold_over_recordings():
    """Rows that are windows of a recording: no leave-one-out (a recording's other windows would stay
    in); a fold's decision values come from the scaler and ridge fitted on the other recordings' rows."""
    from sklearn.linear_model import RidgeClassifier

    rng = np.random.default_rng(2)
    label = np.arange(24) % 2
    recording = np.repeat(np.arange(24), 3)
    x = rng.normal(size=(72, 30)) + 1.5 * label[recording][:, None] * (np.arange(30) < 3)
    part = Part(np.arange(72), recording, label, aggregate="mean")
    history, best, proba = ridge.fit_ridge(RocketHead(30, 2), torch.tensor(x, dtype=torch.float32), part, 2, seed=1)
    assert best["cv"] == "5-fold over 24 recordings (72 rows), grouped by recording" and proba.shape == (24, 2)
    alpha, decisions, _, _, _ = ridge.ridge_cv(x.astype(np.float32).astype(np.float64), part, 2, seed=1)
    assert alpha == best["alpha"]
    for train, test in part.folds(5, seed=1):
        assert not set(recording[train]) & set(recording[test])
        scaler = StandardScaler(with_mean=False).fit(x[train])
        for a in (alpha, 1000.0):
            fitted = RidgeClassifier(alpha=a).fit(scaler.transform(x[train]), label[recording[train]])
            np.testing.assert_allclose(ridge.ridge_cv(x, part, 2, seed=1)[1][a][test].ravel(),
                                       fitted.decision_function(scaler.transform(x[test])), rtol=1e-7, atol=1e-9)
