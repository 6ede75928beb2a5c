"""Population stability index (ml.drift), checked by hand and against a second implementation."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from ml.drift import drift_report, drift_status, numeric_edges, psi, psi_categorical


def test_psi_by_hand_two_bins():
    # reference 1..10: with 2 bins the edge is the median 5.5 -> shares 0.5 / 0.5
    ref = np.arange(1, 11, dtype=float)
    # current: 1 value <= 5.5 and 3 above -> 0.25 / 0.75
    cur = np.array([2.0, 7.0, 8.0, 9.0])
    expected = (0.25 - 0.5) * math.log(0.25 / 0.5) + (0.75 - 0.5) * math.log(0.75 / 0.5)
    assert psi(ref, cur, n_bins=2) == pytest.approx(expected)  # 0.2747
    assert psi(ref, ref, n_bins=2) == 0.0


def test_psi_matches_an_independent_decile_implementation():
    rng = np.random.default_rng(0)
    ref = rng.normal(0, 1, 5000)
    cur = rng.normal(0.3, 1.2, 4000)
    # second method: pandas qcut on the reference gives the decile edges, np.histogram counts
    _, edges = pd.qcut(ref, 10, retbins=True)
    edges[0], edges[-1] = -np.inf, np.inf
    e = np.histogram(ref, edges)[0] / ref.size
    a = np.histogram(cur, edges)[0] / cur.size
    independent = float(np.sum((a - e) * np.log(a / e)))
    assert psi(ref, cur) == pytest.approx(independent, rel=1e-3)
    np.testing.assert_allclose(numeric_edges(ref), edges[1:-1])
    assert psi(ref, rng.normal(0, 1, 4000)) < 0.02  # same distribution: stable


def test_psi_handles_missing_values_and_categories():
    # missing values are a bin of their own: 0% -> 50% missing is a large shift
    ref = pd.Series([1.0, 2.0, 3.0, 4.0])
    cur = pd.Series([1.0, 4.0, None, None])
    assert psi(ref, cur) > 0.25
    # categorical: shares a/b/(missing) 0.5/0.5/0 -> 0.25/0.5/0.25, empty bin floored at 1e-4
    ref_c = pd.Series(["a", "b", "a", "b"], dtype=object)
    cur_c = pd.Series(["a", "b", "b", None], dtype=object)
    e, a = np.array([0.5, 0.5, 1e-4]), np.array([0.25, 0.5, 0.25])
    assert psi_categorical(ref_c, cur_c) == pytest.approx(float(np.sum((a - e) * np.log(a / e))))
    assert psi(pd.Series(["x"] * 3, dtype="category"), pd.Series(["x"] * 3, dtype="category")) == 0.0


def test_drift_status_and_report():
    assert [drift_status(v) for v in (0.05, 0.1, 0.2, 0.25, 0.3)] == ["stable", "stable", "warn", "warn", "alert"]
    ref = pd.DataFrame({"p": np.linspace(0, 1, 100), "x": ["u"] * 100})
    cur = pd.DataFrame({"p": np.linspace(0, 1, 50), "y": [1] * 50})
    assert list(drift_report(ref, cur, ["p", "x", "y"])) == ["p"]  # only columns in both runs


def test_score_bins_are_at_least_one_point_wide():
    # 80% of the reference within 0.001 of zero: its deciles 0.0001..0.0008 collapse into one bin
    ref = np.r_[np.linspace(0, 0.0008, 800), np.linspace(0.3, 0.9, 200)]
    edges = numeric_edges(ref, min_width=0.01)
    deciles = np.quantile(ref, np.arange(1, 10) / 10)
    # the deciles within 0.01 of the minimum (0) are dropped; the two left are far apart
    np.testing.assert_allclose(edges, deciles[deciles >= 0.01])
    assert len(edges) == 2
    # near-zero probabilities doubling (0.0004 -> 0.0008 on average) is not drift of the score ...
    cur = np.r_[np.linspace(0, 0.0016, 800), np.linspace(0.3, 0.9, 200)]
    report = drift_report(pd.DataFrame({"churn_probability": ref, "x": ref}),
                          pd.DataFrame({"churn_probability": cur, "x": cur}), ["churn_probability", "x"])
    assert report["churn_probability"] < 0.01
    # ... although plain deciles (used for the features) do see it
    assert report["x"] > 0.25
