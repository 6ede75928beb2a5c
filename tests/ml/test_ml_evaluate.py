"""Metric functions checked against scikit-learn and against hand-worked examples."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.calibration import calibration_curve
from sklearn.metrics import average_precision_score, brier_score_loss, roc_auc_score

from ml import evaluate


@pytest.fixture(params=[0, 1, 2])
def sample(request):
    rng = np.random.default_rng(request.param)
    n = 400
    p = rng.random(n)
    if request.param == 2:
        p = np.round(p, 1)  # many ties: exercises tie handling
    y = (rng.random(n) < p).astype(int)
    return y, p


def test_roc_auc_matches_sklearn(sample):
    y, p = sample
    assert evaluate.roc_auc(y, p) == pytest.approx(roc_auc_score(y, p), abs=1e-12)


def test_pr_auc_matches_sklearn_average_precision(sample):
    y, p = sample
    assert evaluate.pr_auc(y, p) == pytest.approx(average_precision_score(y, p), abs=1e-12)


def test_brier_matches_sklearn(sample):
    y, p = sample
    assert evaluate.brier(y, p) == pytest.approx(brier_score_loss(y, p), abs=1e-12)


def test_ece_matches_explicit_bins_and_sklearn_calibration_curve(sample):
    y, p = sample
    # Independent computation: explicit (lo, hi] bins, first bin closed at 0.
    edges = np.linspace(0, 1, 11)
    total = 0.0
    obs_rates, mean_preds = [], []
    for b in range(10):
        lo, hi = edges[b], edges[b + 1]
        mask = (p > lo) & (p <= hi) if b > 0 else (p >= lo) & (p <= hi)
        if mask.any():
            total += mask.mean() * abs(y[mask].mean() - p[mask].mean())
            obs_rates.append(y[mask].mean())
            mean_preds.append(p[mask].mean())
    assert evaluate.expected_calibration_error(y, p) == pytest.approx(total, abs=1e-12)
    prob_true, prob_pred = calibration_curve(y, p, n_bins=10, strategy="uniform")
    np.testing.assert_allclose(prob_true, obs_rates, atol=1e-12)
    np.testing.assert_allclose(prob_pred, mean_preds, atol=1e-12)


def test_hand_worked_roc_and_average_precision():
    y = [0, 0, 1, 1]
    p = [0.1, 0.4, 0.35, 0.8]
    # Pairs (pos, neg): (0.35>0.1) (0.35<0.4) (0.8>0.1) (0.8>0.4) -> 3 of 4 ordered right.
    assert evaluate.roc_auc(y, p) == pytest.approx(0.75)
    # Ranked: 0.8(+) 0.4(-) 0.35(+) 0.1(-): recall steps 0.5 at P=1, 0.5 at P=2/3.
    assert evaluate.pr_auc(y, p) == pytest.approx(0.5 * 1 + 0.5 * 2 / 3)


def test_hand_worked_top_decile_lift_on_20_rows():
    # 20 rows, scores strictly decreasing; top 10% = 2 rows with labels 1, 0.
    p = np.linspace(0.95, 0.0, 20)
    y = np.zeros(20, dtype=int)
    y[[0, 5, 9, 17]] = 1  # 4 churners overall -> rate 0.2
    # top-2 rate = 1/2 = 0.5; lift = 0.5 / 0.2 = 2.5
    assert evaluate.top_decile_lift(y, p) == pytest.approx(2.5)
    # Shuffling rows must not matter (sorting is by score).
    perm = np.random.default_rng(0).permutation(20)
    assert evaluate.top_decile_lift(y[perm], p[perm]) == pytest.approx(2.5)


def test_top_decile_takes_ceil_of_ten_percent_without_float_error():
    # n = 30 -> exactly 3 rows (30 * 0.1 is 3.0000000000000004 in floating point).
    p = np.linspace(1, 0, 30)
    y = np.zeros(30, dtype=int)
    y[[0, 1, 2]] = 1  # the 3 top rows are the only churners -> top rate 1.0, overall 0.1
    assert evaluate.top_decile_lift(y, p) == pytest.approx(10.0)
    y2 = y.copy()
    y2[3] = 1  # 4th row is a churner; a 4-row "decile" would give lift 1.0/(4/30)
    assert evaluate.top_decile_lift(y2, p) == pytest.approx(1.0 / (4 / 30))


def test_hand_worked_ece():
    y = [0, 1, 0, 1]
    p = [0.05, 0.05, 0.15, 0.95]
    # bins: [0,.1]: 2 rows |0.5-0.05|=0.45 ; (.1,.2]: |0-0.15| ; (.9,1]: |1-0.95|
    expected = 0.5 * 0.45 + 0.25 * 0.15 + 0.25 * 0.05
    assert evaluate.expected_calibration_error(y, p) == pytest.approx(expected)


def test_metrics_dict(sample):
    y, p = sample
    m = evaluate.metrics(y, p)
    assert set(m) == {
        "n", "positives", "base_rate", "roc_auc", "pr_auc", "top_decile_lift", "brier",
        "expected_calibration_error", "expected_churners", "actual_churners",
    }
    assert m["n"] == len(y)
    assert m["positives"] == m["actual_churners"] == int(np.sum(y))
    assert m["base_rate"] == pytest.approx(np.mean(y))
    assert m["expected_churners"] == pytest.approx(float(np.sum(p)))
    assert m["roc_auc"] == pytest.approx(roc_auc_score(y, p))


def test_undefined_metrics_are_nan_and_bad_input_rejected():
    assert math.isnan(evaluate.roc_auc([0, 0, 0], [0.1, 0.2, 0.3]))
    assert math.isnan(evaluate.pr_auc([0, 0], [0.1, 0.2]))
    assert math.isnan(evaluate.top_decile_lift([0, 0], [0.1, 0.2]))
    with pytest.raises(ValueError):
        evaluate.roc_auc([0, 1, 2], [0.1, 0.2, 0.3])
    with pytest.raises(ValueError):
        evaluate.brier([0, 1], [0.5, 1.5])
    with pytest.raises(ValueError):
        evaluate.metrics([0, 1], [0.5])


def test_lift_table_groups_cover_all_rows():
    rng = np.random.default_rng(5)
    p = rng.random(103)
    y = (rng.random(103) < p).astype(int)
    t = evaluate.lift_table(y, p)
    assert t["rows"].sum() == 103 and t["churners"].sum() == y.sum()
    assert t["cumulative_capture"].iloc[-1] == pytest.approx(1.0)
    # group 1 holds the highest scores
    top = np.sort(p)[::-1][: t["rows"].iloc[0]]
    assert t["mean_score"].iloc[0] == pytest.approx(top.mean())
