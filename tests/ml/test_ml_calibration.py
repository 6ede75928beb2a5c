"""Calibration maps (ml.calibration): Platt by hand and on data with a known miscalibration."""

from __future__ import annotations

import math

import numpy as np
import pytest
from sklearn.metrics import log_loss

from ml import evaluate
from ml.calibration import Calibrator, choose_calibrator, fit_platt


def test_platt_apply_by_hand_and_roundtrip():
    cal = Calibrator(method="platt", a=2.0, b=-1.0)
    # p = 0.5 -> logit 0 -> sigmoid(-1); p = 0.8 -> logit ln 4 -> sigmoid(2 ln 4 - 1) = 16 / (16 + e)
    np.testing.assert_allclose(cal.apply([0.5, 0.8]), [1 / (1 + math.e), 16 / (16 + math.e)])
    assert Calibrator.from_dict(cal.to_dict()).apply([0.3]) == pytest.approx(cal.apply([0.3]))
    np.testing.assert_array_equal(Calibrator().apply([0.1, 0.9]), [0.1, 0.9])


def _overconfident(n, seed):
    # true probability q; the "model" reports sigmoid(2 * logit(q) + 0.5): overconfident and biased
    rng = np.random.default_rng(seed)
    q = rng.uniform(0.05, 0.6, n)
    y = (rng.random(n) < q).astype(float)
    z = np.log(q / (1 - q))
    return y, 1 / (1 + np.exp(-(2 * z + 0.5))), q


def test_platt_recovers_a_known_distortion():
    y, p, _ = _overconfident(40000, 1)
    cal = fit_platt(y, p)
    # inverse of p = sigmoid(2z + 0.5) is z = 0.5 * logit(p) - 0.25
    assert cal.a == pytest.approx(0.5, abs=0.03) and cal.b == pytest.approx(-0.25, abs=0.05)


def test_choose_calibrator_fixes_miscalibration_and_leaves_calibrated_scores_alone():
    y, p, q = _overconfident(4000, 2)
    cal = choose_calibrator(y, p)
    assert cal.method == "platt"
    assert cal.selection["cv_log_loss_platt"] < cal.selection["cv_log_loss_identity"]
    y2, p2, _ = _overconfident(4000, 3)  # fresh data: the map generalises
    assert evaluate.expected_calibration_error(y2, cal.apply(p2)) < evaluate.expected_calibration_error(y2, p2) / 2
    assert log_loss(y2, cal.apply(p2)) < log_loss(y2, p2)
    # already calibrated probabilities keep the identity
    assert choose_calibrator(y, q).method == "identity"
    # a slice without enough churners cannot be calibrated
    assert choose_calibrator(np.r_[np.zeros(50), np.ones(2)], np.full(52, 0.1)).method == "identity"
