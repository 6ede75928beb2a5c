"""Probability calibration fitted on a *later* slice than the trees (never by resampling).

The trees are fitted on the older observation dates; early stopping and calibration use
the validation slice (the most recent training date, or held-out customers for a
single-snapshot source).  Two maps are considered:

* ``identity`` -- keep XGBoost's probabilities (a log-loss objective is already close to
  calibrated when the base rate does not move);
* ``platt`` -- logistic regression on the model's log-odds, ``p' = sigmoid(a * logit(p) + b)``:
  corrects a shifted base rate (``b``) and over/under-confidence (``a``) with two numbers,
  and keeps the ranking (so AUC, lift and the per-customer drivers are unchanged).

The choice is made by cross-validated log loss *inside* the validation slice (Platt is fitted
on k-1 folds and scored on the held-out fold), so a calibrator that only fits noise is not
picked.  Isotonic regression is deliberately not offered: its flat steps create ties that
change the ranking and it over-fits the few thousand rows of one month.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import numpy as np

EPS = 1e-6  # probabilities are clipped to [EPS, 1 - EPS] before taking logits / logs


def _logit(p: np.ndarray) -> np.ndarray:
    p = np.clip(np.asarray(p, dtype="float64"), EPS, 1.0 - EPS)
    return np.log(p / (1.0 - p))


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def log_loss(y: np.ndarray, p: np.ndarray) -> float:
    """Mean negative log-likelihood of 0/1 outcomes under probabilities ``p``."""
    y = np.asarray(y, dtype="float64")
    p = np.clip(np.asarray(p, dtype="float64"), EPS, 1.0 - EPS)
    return float(-np.mean(y * np.log(p) + (1.0 - y) * np.log(1.0 - p)))


@dataclass
class Calibrator:
    """A fitted probability map.  ``method`` is ``identity`` or ``platt`` (``a``, ``b``)."""

    method: str = "identity"
    a: float = 1.0
    b: float = 0.0
    selection: dict[str, Any] = field(default_factory=dict)  # why this method was chosen

    def apply(self, p: Any) -> np.ndarray:
        p = np.asarray(p, dtype="float64")
        if self.method == "identity":
            return p
        if self.method == "platt":
            return _sigmoid(self.a * _logit(p) + self.b)
        raise ValueError(f"unknown calibration method {self.method!r}")

    def to_dict(self) -> dict[str, Any]:
        return {"method": self.method, "a": float(self.a), "b": float(self.b), "selection": self.selection}

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "Calibrator":
        if not d:
            return cls()
        return cls(method=str(d["method"]), a=float(d.get("a", 1.0)), b=float(d.get("b", 0.0)),
                   selection=dict(d.get("selection") or {}))


def fit_platt(y: Any, p: Any) -> Calibrator:
    """Unregularised logistic regression of ``y`` on ``logit(p)``."""
    from sklearn.linear_model import LogisticRegression

    y = np.asarray(y, dtype="float64")
    x = _logit(np.asarray(p)).reshape(-1, 1)
    lr = LogisticRegression(C=1e6, max_iter=1000)
    lr.fit(x, y)
    return Calibrator(method="platt", a=float(lr.coef_[0, 0]), b=float(lr.intercept_[0]))


def choose_calibrator(y: Any, p: Any, *, folds: int = 5, seed: int = 0, min_gain: float = 1e-4) -> Calibrator:
    """Pick identity or Platt by ``folds``-fold CV log loss on (y, p), then refit on all rows.

    Platt is chosen only when it lowers the cross-validated log loss by more than
    ``min_gain`` (so "no change needed" stays the identity).  With too few rows or a single
    class in the slice there is nothing to learn and the identity is returned.
    """
    from sklearn.model_selection import StratifiedKFold

    y = np.asarray(y, dtype="float64")
    p = np.asarray(p, dtype="float64")
    n_pos = int(y.sum())
    n_neg = int(y.size - n_pos)
    if min(n_pos, n_neg) < folds:
        return Calibrator(selection={"reason": f"too few churners/non-churners ({n_pos}/{n_neg}) to calibrate"})
    skf = StratifiedKFold(n_splits=folds, shuffle=True, random_state=seed)
    cv_platt = np.empty_like(p)
    for tr, te in skf.split(p.reshape(-1, 1), y):
        cv_platt[te] = fit_platt(y[tr], p[tr]).apply(p[te])
    ll_identity = log_loss(y, p)
    ll_platt = log_loss(y, cv_platt)
    selection = {"cv_folds": folds, "cv_log_loss_identity": ll_identity, "cv_log_loss_platt": ll_platt,
                 "rows": int(y.size)}
    if ll_platt < ll_identity - min_gain:
        cal = fit_platt(y, p)
        cal.selection = selection
        return cal
    return Calibrator(selection=selection)
