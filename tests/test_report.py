import numpy as np
import pandas as pd
import pytest
from scipy import stats

from deepself.errors import DeepselfError
from deepself.scoring.bootstrap import bootstrap_uar, comparison_pairs, corrected_resampled_ttest
from deepself.scoring.metrics import uar
from deepself.scoring.report import make_report, train_sizes


def _predictions(tmp_path, name, fold, labels, preds):
    frame = pd.DataFrame({"id": [f"{fold}-{i}" for i in range(len(labels))], "fold": fold, "label": labels,
                          "pred": preds})
    for c in sorted(set(labels) | set(preds)):
        frame[f"p_{c}"] = (frame["pred"] == c).astype(float)
    path = tmp_path / f"{name}_{fold}.csv"
    frame.to_csv(path, index=False)
    return str(path)


def _system(tmp_path, name, folds: dict[str, tuple[list, list]], kind="model", **extra):
    paths = [_predictions(tmp_path, name, fold, labels, preds) for fold, (labels, preds) in folds.items()]
    return {"kind": kind, "predictions": paths, "histories": [], **extra}


def _random_folds(rng, n_folds, n_per_class, classes, accuracy):
    """Per fold, labels (n_per_class of each class) and predictions right with probability ``accuracy``."""
    folds = {}
    for f in range(1, n_folds + 1):
        labels = [c for c in classes for _ in range(n_per_class)]
        preds = [y if rng.random() < accuracy else classes[(classes.index(y) + 1) % len(classes)] for y in labels]
        folds[str(f)] = (labels, preds)
    return folds


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
    interval = f"[{100 * row['uar_ci_low']:.1f}, {100 * row['uar_ci_high']:.1f}]"
    assert f"| m | model |  | 66.7 ± 14.4 | {interval} | 3 | 10 |" in text
    assert "One system: nothing to compare." in text
    assert pd.read_csv(tmp_path / "report" / "comparisons.csv").empty
    for png in ["uar.png", "uar_ci.png", "curves.png", "confusion_m.png"]:
        assert (tmp_path / "report" / png).read_bytes()[:4] == b"\x89PNG"


def test_one_held_out_fold_shows_no_spread(tmp_path):
    # a fixed train/dev split (FER-2013's dev): one fold, UAR (1 + 1/2) / 2, and no "± nan"
    paths = [_predictions(tmp_path, "m", "dev", list("aabb"), list("aaba"))]
    summary = make_report({"m": {"kind": "model", "predictions": paths, "histories": []}}, tmp_path / "report", "demo")
    assert np.isnan(summary.iloc[0]["uar_sd"])
    text = (tmp_path / "report" / "report.md").read_text()
    assert "| m | model |  | 75.0 | [" in text and "nan" not in text


def test_interval_covers_a_known_uar_about_95_percent_of_the_time():
    # Two folds of 3 classes x 30 samples, each class recalled with a known probability: the
    # expected UAR is the mean of those probabilities. 200 seeded repetitions: the binomial standard
    # error of the coverage is 0.015, and the percentile bootstrap runs a little short on strata
    # this small (0.937 in 1,000 repetitions): coverage within two standard errors of 0.94.
    recall = np.array([0.6, 0.75, 0.9])
    n, n_folds = 30, 2
    folds = np.repeat(np.arange(n_folds).astype(str), n * len(recall))
    labels = np.tile(np.repeat(["a", "b", "c"], n), n_folds)
    p_right = np.tile(np.repeat(recall, n), n_folds)
    rng = np.random.default_rng(0)
    covered, widths = 0, []
    for rep in range(200):
        correct = rng.random(len(labels)) < p_right
        result = bootstrap_uar(correct[None], folds, labels, resamples=200, seed=rep)
        covered += result.low[0] <= recall.mean() <= result.high[0]
        widths.append(result.high[0] - result.low[0])
    assert abs(covered / 200 - 0.94) <= 0.03
    # and by the width a 95% interval has: 2 x 1.96 x the standard error of the mean of the six
    # per-fold class recalls (0.121), to 10% (a 90% interval is 16% narrower, a 99% one 31% wider)
    standard_error = np.sqrt(n_folds * np.sum(recall * (1 - recall) / n)) / (n_folds * len(recall))
    assert np.median(widths) == pytest.approx(2 * stats.norm.ppf(0.975) * standard_error, rel=0.1)


def test_point_estimate_is_the_reports_uar_and_seeded(tmp_path):
    rng = np.random.default_rng(1)
    systems = {"m": _system(tmp_path, "m", _random_folds(rng, 3, 8, list("abc"), 0.7)),
               "n": _system(tmp_path, "n", _random_folds(rng, 3, 8, list("abc"), 0.7))}
    first = make_report(systems, tmp_path / "r1", "demo", resamples=200, seed=3)
    again = make_report(systems, tmp_path / "r2", "demo", resamples=200, seed=3)
    other = make_report(systems, tmp_path / "r3", "demo", resamples=200, seed=4)
    pd.testing.assert_frame_equal(first, again)
    assert not np.allclose(first["uar_ci_low"], other["uar_ci_low"]) or \
        not np.allclose(first["uar_ci_high"], other["uar_ci_high"])
    assert (first["uar_ci_low"] <= first["uar_mean"]).all() and (first["uar_mean"] <= first["uar_ci_high"]).all()
    assert (first["uar_ci_low"] < first["uar_ci_high"]).all()
    # 90% intervals lie inside 95% ones drawn from the same resamples
    narrow = make_report(systems, tmp_path / "r4", "demo", resamples=200, seed=3, confidence=0.9)
    assert (narrow["uar_ci_low"] >= first["uar_ci_low"]).all() and (narrow["uar_ci_high"] <= first["uar_ci_high"]).all()


def test_system_against_itself_differs_by_nothing(tmp_path):
    rng = np.random.default_rng(2)
    folds = _random_folds(rng, 4, 6, list("abc"), 0.6)
    systems = {"m": _system(tmp_path, "m", folds), "twin": _system(tmp_path, "twin", folds)}
    make_report(systems, tmp_path / "report", "demo", resamples=300)
    row = pd.read_csv(tmp_path / "report" / "comparisons.csv").iloc[0]
    assert {row["system"], row["reference"]} == {"m", "twin"}
    assert row["uar_diff"] == 0
    assert row["diff_ci_low"] <= 0 <= row["diff_ci_high"]
    assert row["p_bootstrap"] == 1
    assert row["corrected_t"] == 0 and row["p_corrected_t"] == 1
    # the same holds for the bare routine, on a system that is not all right or all wrong
    correct = np.array([[True, False, True, True, False, True]] * 2)
    result = bootstrap_uar(correct, ["1"] * 6, list("aaabbb"), [(0, 1)], resamples=100)
    assert result.diff[0] == 0 and result.diff_low[0] <= 0 <= result.diff_high[0] and result.p_value[0] == 1


def test_difference_on_known_samples_equals_the_direct_uar_difference(tmp_path):
    rng = np.random.default_rng(3)
    base = _random_folds(rng, 3, 10, list("abcd"), 0.7)
    # "better" corrects these samples of "base" in folds 1 and 3, and breaks one in fold 2
    better = {f: (labels, list(preds)) for f, (labels, preds) in base.items()}
    changed = {"1": [0, 11, 25], "2": [5], "3": [2, 3, 39]}
    for fold, positions in changed.items():
        labels, preds = better[fold]
        for i in positions:
            preds[i] = labels[i] if preds[i] != labels[i] else "abcd"[("abcd".index(labels[i]) + 1) % 4]
    systems = {"base": _system(tmp_path, "base", base), "better": _system(tmp_path, "better", better)}
    summary = make_report(systems, tmp_path / "report", "demo", resamples=300).set_index("system")

    def direct(folds):
        return np.mean([uar(np.array(labels), np.array(preds)) for labels, preds in
                        (([ord(c) for c in ls], [ord(c) for c in ps]) for ls, ps in folds.values())])

    expected = direct(better) - direct(base)
    assert expected != 0
    row = pd.read_csv(tmp_path / "report" / "comparisons.csv").iloc[0]
    best, other = ("better", "base") if expected > 0 else ("base", "better")
    assert (row["system"], row["reference"]) == (other, best)
    assert row["uar_diff"] == pytest.approx(-abs(expected))
    assert row["uar_diff"] == pytest.approx(summary.loc[other, "uar_mean"] - summary.loc[best, "uar_mean"])
    assert row["diff_ci_low"] <= row["uar_diff"] <= row["diff_ci_high"]


def test_single_fold_intervals_work_and_the_fold_test_is_skipped(tmp_path):
    rng = np.random.default_rng(4)
    folds = {"dev": _random_folds(rng, 1, 40, list("abc"), 0.6)["1"]}
    systems = {"m": _system(tmp_path, "m", folds),
               "n": _system(tmp_path, "n", {"dev": _random_folds(rng, 1, 40, list("abc"), 0.8)["1"]})}
    summary = make_report(systems, tmp_path / "report", "demo", resamples=300)
    assert (summary["uar_ci_low"] < summary["uar_mean"]).all() and (summary["uar_mean"] < summary["uar_ci_high"]).all()
    row = pd.read_csv(tmp_path / "report" / "comparisons.csv").iloc[0]
    assert np.isfinite(row["p_bootstrap"]) and row["diff_ci_low"] < row["diff_ci_high"]
    assert np.isnan(row["corrected_t"]) and np.isnan(row["p_corrected_t"])
    text = (tmp_path / "report" / "report.md").read_text()
    assert ("The corrected resampled t-test over folds (Nadeau and Bengio 2003) is skipped: it needs 3 or more "
            "held-out folds, this experiment has 1.") in text
    assert "t (corrected, folds)" not in text and "nan" not in text
    assert "No correction for multiple comparisons is applied" in text


def test_corrected_resampled_ttest_uses_the_test_training_ratio(tmp_path):
    diffs = np.array([0.02, 0.05, -0.01, 0.04, 0.03])
    t, p = corrected_resampled_ttest(diffs, 0.25)
    se = np.sqrt((1 / 5 + 0.25) * diffs.var(ddof=1))
    assert t == pytest.approx(diffs.mean() / se)
    assert p == pytest.approx(2 * stats.t.sf(abs(t), df=4))
    # without the correction (ratio 0) it is the paired t-test, whose p-value is smaller
    assert corrected_resampled_ttest(diffs, 0.0)[1] == pytest.approx(stats.ttest_1samp(diffs, 0).pvalue)
    assert corrected_resampled_ttest(diffs, 0.0)[1] < p
    assert corrected_resampled_ttest([0.01] * 3, 0.5) == (np.inf, 0.0)

    # in the report, the ratio is the mean over folds of n_test / n_train, n_train read from samples.csv
    sheet = tmp_path / "samples.csv"
    pd.DataFrame({"id": [f"s{i}" for i in range(40)], "label": "a",
                  "fold": ["1"] * 8 + ["2"] * 8 + ["3"] * 8 + ["spare"] * 16}).to_csv(sheet, index=False)
    sizes = train_sizes(sheet)
    assert sizes == {"1": 32, "2": 32, "3": 32, "spare": 24}
    rng = np.random.default_rng(5)
    systems = {name: _system(tmp_path, name, _random_folds(rng, 3, 4, list("ab"), 0.7)) for name in ("m", "n")}
    make_report(systems, tmp_path / "report", "demo", train_size=sizes, resamples=200)
    assert pd.read_csv(tmp_path / "report" / "comparisons.csv").iloc[0]["test_train_ratio"] == pytest.approx(8 / 32)
    del sizes["3"]
    with pytest.raises(DeepselfError, match="held-out fold '3' is not a fold of the sample sheet"):
        make_report(systems, tmp_path / "report", "demo", train_size=sizes, resamples=200)


def test_comparisons_are_against_the_best_and_each_fusions_best_member():
    summary = pd.DataFrame({"system": ["a", "b", "c", "ab", "bc"], "kind": ["model"] * 3 + ["fusion"] * 2,
                            "uar_mean": [0.70, 0.80, 0.75, 0.78, 0.85]})
    systems = {"a": {"kind": "model"}, "b": {"kind": "model"}, "c": {"kind": "model"},
               "ab": {"kind": "fusion", "models": ["a", "b"]}, "bc": {"kind": "fusion", "models": ["b", "c"]}}
    pairs = comparison_pairs(summary, systems)
    assert pairs == [("a", "bc", "against the best system"),
                     ("b", "bc", "against the best system; bc against its best member"),
                     ("c", "bc", "against the best system"), ("ab", "bc", "against the best system"),
                     ("ab", "b", "fusion against its best member")]


def test_systems_must_predict_the_same_samples(tmp_path):
    systems = {"m": _system(tmp_path, "m", {"1": (list("aabb"), list("abab"))}),
               "n": _system(tmp_path, "n", {"1": (list("aab"), list("abb"))})}
    with pytest.raises(DeepselfError, match="systems 'm' and 'n' did not predict the same samples"):
        make_report(systems, tmp_path / "report", "demo", resamples=100)


def _glyph_warnings(record) -> list[str]:
    return [str(w.message) for w in record if "Glyph" in str(w.message)]


def test_labels_no_font_here_draws_are_shown_by_index_and_listed(tmp_path):
    # 猫: DejaVu Sans (matplotlib's default) lacks it; a machine with a CJK font draws it, one
    # without (as CI) shows "class <index>" and lists the index in report.md; never empty boxes
    import warnings

    paths = [_predictions(tmp_path, "m", "1", ["猫", "dog", "猫", "dog"], ["猫", "dog", "dog", "dog"])]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        make_report({"m": {"kind": "model", "predictions": paths, "histories": []}}, tmp_path / "r", "demo",
                    resamples=50)
    assert _glyph_warnings(record) == []
    text = (tmp_path / "r" / "report.md").read_text()
    from deepself.scoring.plots import label_fonts

    if label_fonts(["猫"]).missing:
        assert "## Class labels in the figures" in text and "| class 1 | 猫 |" in text
    else:
        assert "## Class labels in the figures" not in text


def test_a_label_the_default_font_lacks_is_drawn_by_a_fallback_font(tmp_path):
    # ℊ (U+210A): not in DejaVu Sans; in STIXGeneral and DejaVu Math TeX Gyre, which ship with matplotlib
    import warnings

    paths = [_predictions(tmp_path, "m", "1", ["aℊ", "b", "aℊ", "b"], ["aℊ", "b", "b", "b"])]
    with warnings.catch_warnings(record=True) as record:
        warnings.simplefilter("always")
        make_report({"m": {"kind": "model", "predictions": paths, "histories": []}}, tmp_path / "r", "demo",
                    resamples=50)
    assert _glyph_warnings(record) == []
    assert "## Class labels in the figures" not in (tmp_path / "r" / "report.md").read_text()
    from deepself.scoring.plots import label_fonts

    fonts = label_fonts(["aℊ"])
    assert fonts.missing == frozenset() and len(fonts.families) == 2  # the default, then one that has ℊ


def test_the_report_lists_each_fusions_weights_per_fold(tmp_path):
    import json
    from pathlib import Path

    folds = {"1": (list("aabb"), list("aabb")), "2": (list("aabb"), list("abbb"))}
    fused = tmp_path / "fusions" / "f"
    paths = []
    for fold, (labels, preds) in folds.items():
        (fused / f"fold{fold}").mkdir(parents=True)
        path = Path(_predictions(tmp_path, "f", fold, labels, preds))
        paths.append(str(path.rename(fused / f"fold{fold}" / "predictions.csv")))
        weights = {"m": 0.8, "n": 0.2} if fold == "1" else {"m": 0.0, "n": 1.0}
        (fused / f"fold{fold}" / "weights.json").write_text(json.dumps(
            {"method": "select", "weights": weights, "selection": {"dev_uar": 0.9 + 0.05 * int(fold)}}))
    systems = {"m": _system(tmp_path, "m", folds), "n": _system(tmp_path, "n", folds),
               "f": {"kind": "fusion", "predictions": paths, "models": ["m", "n"]}}
    make_report(systems, tmp_path / "report", resamples=50)
    text = (tmp_path / "report" / "report.md").read_text()
    assert "## Fusion weights: f (select)" in text
    assert "| 1 | 0.8 | 0.2 | 95.0 |" in text and "| 2 | 0.0 | 1.0 | 100.0 |" in text


def test_the_interval_plot_takes_an_interval_that_ends_beside_the_mean(tmp_path):
    """A percentile interval can end a rounding error inside the mean (1.0 summed in another order) or,
    skewed, beside it: the forest plot draws it instead of stopping the report."""
    from deepself.scoring.plots import plot_uar_ci

    summary = pd.DataFrame({"system": ["a", "b"], "kind": ["model", "fusion"], "uar_mean": [1.0, 0.9],
                            "uar_ci_low": [1.0 + 1e-16, 0.91], "uar_ci_high": [1.0 + 1e-16, 0.95]})
    plot_uar_ci(summary, 0.95, 1000, tmp_path / "ci.png")
    assert (tmp_path / "ci.png").stat().st_size > 1000
