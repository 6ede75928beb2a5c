"""The quality gate (ml.gate) and the registry's choice of the model that scores."""

from __future__ import annotations

import numpy as np
import pytest
from sklearn.metrics import roc_auc_score

from ml.gate import GateThresholds, evaluate_gate
from ml.registry import latest_model, latest_passing_model, read_gate, record_gate, save_model
from ml.train import fit_model, train_model
from ml_synthetic import FAST

BASELINES = {"logistic_regression": {"roc_auc": 0.80}, "rule_recency": {"roc_auc": 0.78}}


@pytest.mark.parametrize(
    "auc, ece, passed",
    [
        (0.85, 0.02, True),     # beats the best baseline (0.80), calibrated
        (0.797, 0.02, True),    # 0.003 below: inside the 0.005 tolerance
        (0.795, 0.02, False),   # exactly best - tolerance does not beat it
        (0.79, 0.02, False),    # below the tolerance
        (0.85, 0.05, True),     # ECE at the threshold is allowed
        (0.85, 0.0501, False),  # ECE above 0.05
    ],
)
def test_gate_rules_by_hand(auc, ece, passed):
    d = evaluate_gate({"roc_auc": auc, "pooled_expected_calibration_error": ece}, BASELINES)
    assert d.passed is passed
    assert d.best_baseline == "logistic_regression" and d.best_baseline_auc == 0.80


def test_gate_thresholds_are_configurable_and_undefined_auc_fails():
    m = {"roc_auc": 0.79, "pooled_expected_calibration_error": 0.07}
    assert not evaluate_gate(m, BASELINES).passed
    assert evaluate_gate(m, BASELINES, GateThresholds(auc_tolerance=0.02, max_ece=0.08)).passed
    assert GateThresholds.from_dict({"max_ece": 0.08}).max_ece == 0.08
    assert not evaluate_gate({"roc_auc": None, "pooled_expected_calibration_error": 0.0}, BASELINES).passed
    # without the pooled figure the mean per-split ECE is used
    assert not evaluate_gate({"roc_auc": 0.9, "expected_calibration_error": 0.06}, BASELINES).passed


def _shuffled_labels_fit(train, **kw):
    """The normal training procedure, fed labels shuffled across the training rows."""
    bad = train.copy()
    bad["label"] = np.random.default_rng(123).permutation(bad["label"].to_numpy())
    return fit_model(bad, **kw)


def _independent_gate(result, thresholds=GateThresholds()):
    """The gate recomputed from the raw backtest predictions with scikit-learn."""
    tp = result.test_predictions
    auc = np.mean([roc_auc_score(g["label"], g["churn_probability"]) for _, g in tp.groupby("split")])
    best = max(b["roc_auc"] for b in result.baselines.values())
    y, p = tp["label"].to_numpy(), tp["churn_probability"].to_numpy()
    edges = np.linspace(0, 1, 11)
    ece = 0.0
    for b in range(10):  # explicit (lo, hi] bins, the first one closed at 0
        mask = (p > edges[b]) & (p <= edges[b + 1]) if b else (p >= 0) & (p <= edges[1])
        if mask.any():
            ece += mask.mean() * abs(y[mask].mean() - p[mask].mean())
    return bool(auc > best - thresholds.auc_tolerance and ece <= thresholds.max_ece), auc, ece


def test_shuffled_label_model_fails_and_registry_serves_newest_passing(u_observations, u_trained, tmp_path):
    bad = train_model(u_observations, seed=0, fit_fn=_shuffled_labels_fit, **FAST)
    good_decision = evaluate_gate(u_trained.metrics, u_trained.baselines, GateThresholds.from_dict(u_trained.gate_thresholds))
    bad_decision = evaluate_gate(bad.metrics, bad.baselines, GateThresholds.from_dict(bad.gate_thresholds))

    ok, good_auc, good_ece = _independent_gate(u_trained)
    assert good_decision.passed and ok
    assert good_decision.model_auc == pytest.approx(good_auc)
    assert good_decision.ece == pytest.approx(good_ece)
    not_ok, bad_auc, _ = _independent_gate(bad)
    assert not bad_decision.passed and not not_ok
    assert bad_auc < 0.6  # no ranking skill left
    assert "does not beat" in bad_decision.summary

    models = tmp_path / "models"
    good_path = save_model(u_trained, models, code_version="good")
    record_gate(good_path, good_decision.to_dict())
    bad_path = save_model(bad, models, code_version="bad")  # newer, same second
    record_gate(bad_path, bad_decision.to_dict())
    assert latest_model(models) == bad_path
    assert latest_passing_model(models) == good_path
    assert read_gate(bad_path)["passed"] is False and read_gate(good_path)["passed"] is True
    # a newer model whose gate has not run yet is not served either
    ungated = save_model(u_trained, models, code_version="pending")
    assert latest_passing_model(models) == good_path
    record_gate(ungated, {"passed": True})
    assert latest_passing_model(models) == ungated
    # older models are kept
    assert {p.name for p in models.iterdir()} == {good_path.name, bad_path.name, ungated.name}
