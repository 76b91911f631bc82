import numpy as np
import pytest
from sklearn.metrics import balanced_accuracy_score, confusion_matrix, recall_score

from deepself.scoring.metrics import confusion, recall_per_class, uar


@pytest.mark.filterwarnings("ignore:y_pred contains classes not in y_true")
@pytest.mark.parametrize("seed", range(5))
def test_uar_equals_scikit_learn(seed):
    rng = np.random.default_rng(seed)
    n_classes = 5
    y = rng.integers(0, n_classes - (seed % 2), 200)  # odd seeds: one class never occurs
    p = np.where(rng.random(200) < 0.6, y, rng.integers(0, n_classes, 200))
    assert uar(y, p, n_classes) == pytest.approx(balanced_accuracy_score(y, p))
    np.testing.assert_array_equal(confusion(y, p, n_classes), confusion_matrix(y, p, labels=range(n_classes)))
    present = np.unique(y)
    np.testing.assert_allclose(recall_per_class(confusion(y, p, n_classes))[present],
                               recall_score(y, p, labels=present, average=None))


def test_uar_is_blind_to_class_balance():
    y = np.array([0] * 90 + [1] * 10)
    always_zero = np.zeros(100, dtype=int)
    assert uar(y, always_zero, 2) == 0.5  # accuracy would be 0.9
