"""The sheet job's fold assignment without scikit-learn is scikit-learn's StratifiedKFold, fold for fold."""

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import StratifiedKFold

from deepself.io.folds import assign_folds, stratified_folds


@pytest.mark.parametrize("seed", [0, 1, 7, 12345])
@pytest.mark.parametrize("k", [2, 3, 5, 10])
def test_stratified_folds_are_sklearns(k, seed):
    rng = np.random.default_rng(seed)
    for n_classes in (1, 2, 4, 11):
        counts = rng.integers(k, 4 * k + 3, size=n_classes)  # every class at least k samples (the sheet's check)
        labels = rng.permutation(np.repeat([f"c{c}" for c in rng.permutation(n_classes)], counts)).astype(object)
        expected = np.empty(len(labels), dtype=int)
        for i, (_, test) in enumerate(StratifiedKFold(k, shuffle=True, random_state=seed).split(labels, labels)):
            expected[test] = i
        np.testing.assert_array_equal(stratified_folds(labels, k, seed), expected)


def test_assign_folds_writes_them_as_text_from_1():
    sheet = pd.DataFrame({"id": [f"s{i}" for i in range(12)], "label": list("abc") * 4})
    folds = assign_folds(sheet, {"folds": 4, "seed": 3}, "sheet")["fold"]
    assert sorted(folds.unique()) == ["1", "2", "3", "4"]
    assert (pd.crosstab(folds, sheet["label"]) == 1).all().all()  # one sample of each class per fold
