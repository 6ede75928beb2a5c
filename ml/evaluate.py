"""Pure metric functions for a binary churn model.

Implemented with numpy only (no scikit-learn) so that the tests can check them against
scikit-learn as an independent reference.  Conventions follow scikit-learn where one
exists: ``roc_auc`` uses average ranks for tied scores, ``pr_auc`` is *average
precision* (step-wise, no interpolation), and the calibration bins are
scikit-learn's ``calibration_curve(strategy="uniform")`` bins.

Undefined values (e.g. AUC when the sample has a single class) are ``nan`` rather
than an exception: a small segment with no churners is a fact to report, not a crash.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np
import pandas as pd


def _validate(y: Any, p: Any) -> tuple[np.ndarray, np.ndarray]:
    """Coerce to 1-d float arrays and check y is 0/1 and p is finite."""
    y_arr = np.asarray(y, dtype="float64").ravel()
    p_arr = np.asarray(p, dtype="float64").ravel()
    if y_arr.shape != p_arr.shape:
        raise ValueError(f"y and p differ in length: {y_arr.shape[0]} vs {p_arr.shape[0]}")
    if y_arr.size and not np.isin(y_arr, (0.0, 1.0)).all():
        raise ValueError("y must contain only 0 and 1 (no missing labels)")
    if not np.isfinite(p_arr).all():
        raise ValueError("scores must be finite (no NaN/inf)")
    return y_arr, p_arr


def _check_probabilities(p: np.ndarray) -> None:
    if p.size and (p.min() < 0.0 or p.max() > 1.0):
        raise ValueError("probabilities must lie in [0, 1]")


def roc_auc(y: Any, p: Any) -> float:
    """Area under the ROC curve via the Mann-Whitney U statistic (ties get half credit)."""
    y_arr, p_arr = _validate(y, p)
    n_pos = int(y_arr.sum())
    n_neg = y_arr.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    # Average ranks (1-based) handle ties exactly like the trapezoidal ROC area.
    ranks = pd.Series(p_arr).rank(method="average").to_numpy()
    u = ranks[y_arr == 1].sum() - n_pos * (n_pos + 1) / 2.0
    return float(u / (n_pos * n_neg))


def pr_auc(y: Any, p: Any) -> float:
    """Average precision: sum over distinct thresholds of (R_k - R_{k-1}) * P_k."""
    y_arr, p_arr = _validate(y, p)
    n_pos = y_arr.sum()
    if n_pos == 0:
        return float("nan")
    order = np.argsort(-p_arr, kind="mergesort")
    y_sorted = y_arr[order]
    p_sorted = p_arr[order]
    # Evaluate precision/recall only at the last row of each block of tied scores:
    # all tied rows cross the threshold together.
    last_of_block = np.r_[p_sorted[1:] != p_sorted[:-1], True]
    tp = np.cumsum(y_sorted)[last_of_block]
    predicted = (np.arange(y_sorted.size) + 1)[last_of_block]
    precision = tp / predicted
    recall = tp / n_pos
    return float(np.sum(np.diff(np.r_[0.0, recall]) * precision))


def top_decile_lift(y: Any, p: Any, *, fraction: float = 0.1) -> float:
    """Churn rate among the top ``fraction`` of rows by score, divided by the overall rate.

    The top group has ``ceil(n * fraction)`` rows (at least one).  Ties at the cut are
    broken by original row order (stable sort), so the result is deterministic.
    """
    if not 0.0 < fraction <= 1.0:
        raise ValueError("fraction must be in (0, 1]")
    y_arr, p_arr = _validate(y, p)
    if y_arr.size == 0 or y_arr.sum() == 0:
        return float("nan")
    # round() first: 30 * 0.1 is 3.0000000000000004 in floating point, and ceil of that
    # would wrongly take 4 rows.
    k = max(1, math.ceil(round(y_arr.size * fraction, 9)))
    order = np.argsort(-p_arr, kind="mergesort")
    top_rate = y_arr[order[:k]].mean()
    return float(top_rate / y_arr.mean())


def brier(y: Any, p: Any) -> float:
    """Mean squared error between probability and outcome (lower is better)."""
    y_arr, p_arr = _validate(y, p)
    _check_probabilities(p_arr)
    if y_arr.size == 0:
        return float("nan")
    return float(np.mean((p_arr - y_arr) ** 2))


def _uniform_bin_index(p: np.ndarray, n_bins: int) -> np.ndarray:
    """Bin index for equal-width bins on [0, 1]: [0, 0.1], (0.1, 0.2], ..., (0.9, 1].

    Same edges and edge handling as scikit-learn's ``calibration_curve``.
    """
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    return np.searchsorted(edges[1:-1], p)


def expected_calibration_error(y: Any, p: Any, *, n_bins: int = 10) -> float:
    """Sum over non-empty equal-width bins of (bin share) * |observed rate - mean p|."""
    y_arr, p_arr = _validate(y, p)
    _check_probabilities(p_arr)
    if y_arr.size == 0:
        return float("nan")
    idx = _uniform_bin_index(p_arr, n_bins)
    counts = np.bincount(idx, minlength=n_bins)
    sum_y = np.bincount(idx, weights=y_arr, minlength=n_bins)
    sum_p = np.bincount(idx, weights=p_arr, minlength=n_bins)
    nonempty = counts > 0
    gap = np.abs(sum_y[nonempty] - sum_p[nonempty]) / counts[nonempty]
    return float(np.sum(counts[nonempty] / y_arr.size * gap))


def calibration_table(y: Any, p: Any, *, n_bins: int = 10) -> pd.DataFrame:
    """Per-bin rows/mean predicted/observed rate (non-empty bins), for reliability plots."""
    y_arr, p_arr = _validate(y, p)
    idx = _uniform_bin_index(p_arr, n_bins)
    edges = np.linspace(0.0, 1.0, n_bins + 1)
    frame = pd.DataFrame({"bin": idx, "y": y_arr, "p": p_arr})
    g = frame.groupby("bin").agg(rows=("y", "size"), mean_predicted=("p", "mean"), observed_rate=("y", "mean"))
    g["bin_low"] = edges[g.index.to_numpy()]
    g["bin_high"] = edges[g.index.to_numpy() + 1]
    return g.reset_index()[["bin", "bin_low", "bin_high", "rows", "mean_predicted", "observed_rate"]]


def lift_table(y: Any, p: Any, *, n_groups: int = 10) -> pd.DataFrame:
    """Rows split into ``n_groups`` score-ordered groups (1 = highest scores) with churn
    rate and lift per group, plus cumulative share of churners captured."""
    y_arr, p_arr = _validate(y, p)
    order = np.argsort(-p_arr, kind="mergesort")
    groups = np.empty(y_arr.size, dtype=int)
    # array_split gives near-equal groups even when n is not a multiple of n_groups.
    for g, rows in enumerate(np.array_split(order, n_groups), start=1):
        groups[rows] = g
    frame = pd.DataFrame({"group": groups, "y": y_arr, "p": p_arr})
    t = frame.groupby("group").agg(rows=("y", "size"), churners=("y", "sum"), mean_score=("p", "mean"))
    base = y_arr.mean() if y_arr.size else float("nan")
    t["churn_rate"] = t["churners"] / t["rows"]
    t["lift"] = t["churn_rate"] / base if base > 0 else float("nan")
    total = y_arr.sum()
    t["cumulative_capture"] = t["churners"].cumsum() / total if total > 0 else float("nan")
    return t.reset_index()


def metrics(y: Any, p: Any) -> dict[str, float | int]:
    """All model metrics for one labelled sample, as JSON-friendly python scalars.

    Keys: n, positives, base_rate, roc_auc, pr_auc, top_decile_lift, brier,
    expected_calibration_error, expected_churners (sum of p), actual_churners.
    """
    y_arr, p_arr = _validate(y, p)
    _check_probabilities(p_arr)
    out = ranking_metrics(y_arr, p_arr)
    actual = out.pop("actual_churners")
    # probability-only metrics; actual_churners stays last, next to expected_churners
    out.update({
        "brier": brier(y_arr, p_arr),
        "expected_calibration_error": expected_calibration_error(y_arr, p_arr),
        "expected_churners": float(p_arr.sum()),
        "actual_churners": actual,
    })
    return out


def ranking_metrics(y: Any, score: Any) -> dict[str, float | int]:
    """Metrics that only need an ordering (for rule baselines whose scores are not
    probabilities, so Brier/ECE/expected churners would be meaningless)."""
    y_arr, s_arr = _validate(y, score)
    n = int(y_arr.size)
    positives = int(y_arr.sum())
    return {
        "n": n,
        "positives": positives,
        "base_rate": float(positives / n) if n else float("nan"),
        "roc_auc": roc_auc(y_arr, s_arr),
        "pr_auc": pr_auc(y_arr, s_arr),
        "top_decile_lift": top_decile_lift(y_arr, s_arr),
        "actual_churners": positives,
    }
