"""Scoring, drivers and segment roll-ups (ml.score)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from ml import score as score_mod
from ml.score import action_for, clv_estimate, risk_by_segment, score
from ml_synthetic import DRIVER


@pytest.fixture(scope="module")
def scoring_frame(observations):
    return observations[observations["label"].isna()].reset_index(drop=True)


@pytest.fixture(scope="module")
def scored(trained, scoring_frame):
    return score(trained, scoring_frame)


def test_score_columns_probabilities_and_value_at_risk(trained, scoring_frame, scored):
    assert list(scored.columns) == [
        "customer_id", "observation_date", "churn_probability", "risk_tier",
        "driver_1", "driver_2", "driver_3", "top_drivers", "recommended_action", "monthly_value",
        "expected_mrr_at_risk", "clv_estimate", "clv_at_risk", "expected_value_at_risk",
    ]
    assert len(scored) == len(scoring_frame)
    assert scored["customer_id"].tolist() == scoring_frame["customer_id"].tolist()
    p = scored["churn_probability"].to_numpy()
    assert ((p >= 0) & (p <= 1)).all()
    mv = scoring_frame["monthly_value"].to_numpy()
    np.testing.assert_allclose(scored["expected_mrr_at_risk"], p * mv)
    np.testing.assert_allclose(scored["expected_value_at_risk"], p * mv)
    # CLV: monthly value / max(p, 0.02); at risk: p x monthly value x lifetime of the mean customer
    np.testing.assert_allclose(scored["clv_estimate"], [m / max(q, 0.02) for m, q in zip(mv, p)])
    np.testing.assert_allclose(scored["clv_at_risk"], p * mv / max(p.mean(), 0.02))
    # Tiers recomputed independently from the thresholds.
    expected_tier = ["high" if v >= 0.5 else "medium" if v >= 0.2 else "low" for v in p]
    assert scored["risk_tier"].tolist() == expected_tier
    # Probabilities agree with a direct booster prediction.
    import xgboost as xgb
    from ml.features import to_matrix

    direct = trained.booster.predict(xgb.DMatrix(to_matrix(scoring_frame, trained.feature_spec), enable_categorical=True))
    np.testing.assert_allclose(p, trained.calibrator.apply(direct), rtol=1e-6)


def test_drivers_are_real_features_and_match_contributions(trained, scoring_frame, scored):
    features = set(trained.features)
    for col in ("driver_1", "driver_2", "driver_3"):
        assert scored[col].dropna().isin(features).all()
    # None only after all positive contributions are used up (never a gap).
    d = scored[["driver_1", "driver_2", "driver_3"]]
    assert not (d["driver_1"].isna() & d["driver_2"].notna()).any()
    assert not (d["driver_2"].isna() & d["driver_3"].notna()).any()
    # Readable string lists the same drivers in the same order.
    row = scored.dropna(subset=["driver_3"]).iloc[0]
    assert [part.split(" (+")[0] for part in row["top_drivers"].split("; ")] == [
        row["driver_1"], row["driver_2"], row["driver_3"],
    ]
    # Check one row's driver_1 against the contributions computed here.
    import xgboost as xgb
    from ml.features import to_matrix

    dm = xgb.DMatrix(to_matrix(scoring_frame, trained.feature_spec), enable_categorical=True)
    contrib = trained.booster.predict(dm, pred_contribs=True)[:, :-1]
    best = contrib.argmax(axis=1)
    expected = [trained.features[j] if contrib[r, j] > 0 else None for r, j in enumerate(best)]
    assert scored["driver_1"].tolist() == expected


def test_approx_drivers_follow_saabas_contributions(trained, scoring_frame, scored):
    # drivers="approx": the same probabilities; drivers ranked by the Saabas contributions
    # (computed here directly), which sum, with the bias, to the margin as SHAP values do
    import xgboost as xgb
    from ml.features import to_matrix

    approx = score(trained, scoring_frame, drivers="approx")
    np.testing.assert_array_equal(approx["churn_probability"].to_numpy(), scored["churn_probability"].to_numpy())
    dm = xgb.DMatrix(to_matrix(scoring_frame, trained.feature_spec), enable_categorical=True)
    full = trained.booster.predict(dm, pred_contribs=True, approx_contribs=True)
    np.testing.assert_allclose(full.sum(axis=1), trained.booster.predict(dm, output_margin=True), rtol=1e-4, atol=1e-4)
    contrib = full[:, :-1]
    best = contrib.argmax(axis=1)
    expected = [trained.features[j] if contrib[r, j] > 0 else None for r, j in enumerate(best)]
    assert approx["driver_1"].tolist() == expected
    # a different attribution, but mostly the same top driver as exact SHAP on this model
    assert (approx["driver_1"] == scored["driver_1"]).mean() > 0.7
    with pytest.raises(ValueError, match="drivers must be 'exact' or 'approx'"):
        score(trained, scoring_frame, drivers="shap")


def test_driver_method_setting():
    from orchestration.settings import EXACT_DRIVERS_MAX_ROWS, Settings

    assert Settings().drivers_for(EXACT_DRIVERS_MAX_ROWS) == "exact"
    assert Settings().drivers_for(EXACT_DRIVERS_MAX_ROWS + 1) == "approx"
    assert Settings(driver_method="exact").drivers_for(10**7) == "exact"
    assert Settings(driver_method="approx").drivers_for(5) == "approx"


def test_top_driver_is_the_feature_that_drives_the_label(trained, scoring_frame):
    # Customers with a very long login gap: the label-driving feature must dominate.
    risky = scoring_frame.nlargest(20, DRIVER)
    out = score(trained, risky)
    assert (out["driver_1"] == DRIVER).all()
    assert (out["churn_probability"] > 0.5).all()
    assert out["top_drivers"].str.startswith(f"{DRIVER} (+").all()


def test_score_handles_unseen_levels_and_thresholds(trained, scoring_frame):
    frame = scoring_frame.head(5).copy()
    frame["plan"] = "platinum"  # unseen level -> missing, not an error
    out = score(trained, frame, high=0.9, medium=0.05)
    assert out["churn_probability"].between(0, 1).all()
    p = out["churn_probability"]
    assert out["risk_tier"].tolist() == ["high" if v >= 0.9 else "medium" if v >= 0.05 else "low" for v in p]
    with pytest.raises(ValueError):
        score(trained, frame, high=0.1, medium=0.5)


def test_recommended_action_follows_the_documented_mapping(scored):
    # hand-checked examples of each rule kind, and the default
    assert action_for("tickets_90d") == action_for("open_tickets") == action_for("avg_satisfaction") == "fix service issues"
    assert action_for("loyalty_points_balance") == action_for("tenure_days") == action_for("reactivations") == "loyalty programme"
    assert action_for("contract") == action_for("mrr_current") == action_for("monthly_value") == "personalised offer"
    assert action_for("days_since_last_activity") == action_for("orders_30d") == action_for("interactions_trend") == "improve engagement"
    assert action_for("gender") == action_for(DRIVER) == score_mod.DEFAULT_ACTION == "personalised offer"
    assert action_for(None) is None
    assert set(score_mod.ACTIONS) == {"improve engagement", "fix service issues", "personalised offer", "loyalty programme"}
    # in the scores: the action of driver_1, null exactly when there is no positive driver
    expected = [None if d is None else action_for(d) for d in scored["driver_1"]]
    assert scored["recommended_action"].tolist() == expected


def test_clv_formula_by_hand():
    # monthly: 100 / max(0.25, 0.02) = 400; 100 / max(0.01, 0.02) = 5000 (the 50-month cap)
    np.testing.assert_allclose(clv_estimate([100.0, 100.0], [0.25, 0.01]), [400.0, 5000.0])
    # quarterly probability 0.271 -> monthly 1 - 0.729^(1/3) = 0.1 -> lifetime 10 months
    np.testing.assert_allclose(clv_estimate([30.0], [0.271], months_per_period=3.0), [300.0])


def test_risk_by_segment_matches_independent_groupby():
    scored = pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d", "e", "f"],
            "churn_probability": [0.9, 0.1, 0.6, 0.3, 0.5, 0.2],
            "monthly_value": [100.0, 50.0, 10.0, np.nan, 20.0, 40.0],
            "plan": ["pro", "pro", "basic", None, "basic", "pro"],
            "country": ["DE", "FR", "DE", "DE", "FR", "FR"],
        }
    )
    scored["expected_mrr_at_risk"] = scored["churn_probability"] * scored["monthly_value"]
    scored["expected_value_at_risk"] = scored["expected_mrr_at_risk"]
    scored["clv_at_risk"] = scored["expected_mrr_at_risk"] * 2.5
    out = risk_by_segment(scored, ["plan", "country"])
    assert out["segment_dimension"].tolist()[0] == "all"
    got = out.set_index(["segment_dimension", "segment_value"])

    # 'all' row by plain sums.
    all_row = got.loc[("all", "all")]
    assert all_row["customers"] == 6
    assert all_row["expected_churners"] == pytest.approx(2.6)
    assert all_row["expected_mrr_at_risk"] == pytest.approx(90 + 5 + 6 + 10 + 8)
    assert all_row["revenue_at_risk"] == pytest.approx(90 + 5 + 6 + 10 + 8)
    assert all_row["clv_at_risk"] == pytest.approx(2.5 * (90 + 5 + 6 + 10 + 8))
    assert all_row["high_risk_customers"] == 3  # 0.9, 0.6, 0.5 (>= 0.5)

    # Other dimensions via pandas groupby with dropna=False, nulls filled differently.
    for dim in ["plan", "country"]:
        ref = (
            scored.assign(key=scored[dim].fillna("(missing)"))
            .groupby("key", dropna=False)
            .agg(
                customers=("customer_id", "count"),
                mean_churn_probability=("churn_probability", "mean"),
                expected_churners=("churn_probability", "sum"),
                expected_mrr_at_risk=("expected_mrr_at_risk", "sum"),
                clv_at_risk=("clv_at_risk", "sum"),
                revenue_at_risk=("expected_value_at_risk", "sum"),
                high_risk_customers=("churn_probability", lambda s: int((s >= 0.5).sum())),
            )
        )
        sub = got.loc[dim]
        assert sorted(sub.index) == sorted(ref.index)
        for key in ref.index:
            for col in ref.columns:
                assert sub.loc[key, col] == pytest.approx(ref.loc[key, col]), (dim, key, col)
    assert got.loc[("plan", "(missing)"), "expected_mrr_at_risk"] == 0.0
    # Within a dimension: ordered by expected MRR at risk.
    plan_rows = out[out["segment_dimension"] == "plan"]
    assert plan_rows["expected_mrr_at_risk"].is_monotonic_decreasing


def test_risk_by_segment_unknown_dimension():
    scored = pd.DataFrame({"customer_id": ["a"], "churn_probability": [0.5], "expected_value_at_risk": [1.0]})
    with pytest.raises(KeyError):
        risk_by_segment(scored, ["plan"])


def _drivers_by_row_loop(contribs: np.ndarray, features: list[str], k: int):
    """The per-row formulation top_drivers replaced: a stable sort of each row, positive values kept."""
    order = np.argsort(-contribs, axis=1, kind="stable")[:, :k]
    cols = [[None] * len(contribs) for _ in range(3)]
    text = []
    for i in range(len(contribs)):
        parts = []
        for j in range(k):
            v = contribs[i, order[i, j]]
            if v > 0:
                cols[j][i] = features[order[i, j]]
                parts.append(f"{features[order[i, j]]} (+{v:.2f})")
        text.append("; ".join(parts) if parts else None)
    return cols, text


@pytest.mark.parametrize("n_features", [2, 3, 7])
def test_top_drivers_equal_a_per_row_stable_sort(n_features):
    rng = np.random.default_rng(11)
    # rounded to 0.25 so rows have ties (the earlier feature wins), zeros and negatives
    contribs = np.round(rng.normal(0, 0.6, size=(500, n_features)) * 4) / 4
    contribs[:10] = -1.0  # rows without any positive contribution
    contribs[10:20] = 0.5  # all tied
    features = [f"f{j}" for j in range(n_features)]
    k = min(3, n_features)
    cols, text = score_mod.top_drivers(contribs, features, k)
    want_cols, want_text = _drivers_by_row_loop(contribs, features, k)
    for j in range(3):
        assert list(cols[j]) == want_cols[j]
    assert text.tolist() == want_text
    assert text[:10].isna().all() and text[10] == "f0 (+0.50); f1 (+0.50)" + ("; f2 (+0.50)" if k == 3 else "")
    # actions are looked up per distinct name, same answers as one call per row
    acts = score_mod.actions_for(cols[0])
    assert acts.tolist() == [action_for(d) for d in want_cols[0]]
