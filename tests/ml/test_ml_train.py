"""Training, splitting and baselines (ml.train)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import roc_auc_score

from ml_synthetic import DRIVER, make_observations
from ml.train import train_model


def test_time_split_uses_only_earlier_dates(trained, observations):
    labelled = observations[observations["label"].notna()]
    dates = sorted(labelled["observation_date"].unique())
    last = pd.Timestamp(dates[-1])
    split = trained.split
    assert trained.split_method == "time"
    assert split["test_dates"] == [last.date().isoformat()]
    assert max(pd.Timestamp(d) for d in split["train_dates"]) < last
    assert split["train_rows"] == int((labelled["observation_date"] < last).sum())
    assert split["test_rows"] == int((labelled["observation_date"] == last).sum())
    assert split["test_positives"] == int(labelled.loc[labelled["observation_date"] == last, "label"].sum())
    # Early stopping held out the last training date; fitting used the dates before it.
    assert split["validation_dates"] == [pd.Timestamp(dates[-2]).date().isoformat()]
    assert max(split["fit_dates"]) < split["validation_dates"][0]
    # Test predictions cover exactly the test rows.
    tp = trained.test_predictions
    assert len(tp) == split["test_rows"] and (tp["observation_date"] == last).all()


def test_model_learns_the_signal_and_beats_irrelevant_rule(trained):
    tp = trained.test_predictions
    auc = roc_auc_score(tp["label"], tp["churn_probability"])  # independent of ml.evaluate
    assert trained.metrics["roc_auc"] == pytest.approx(auc)
    assert auc > 0.75
    # No days_since_last_activity column -> rule is "short tenure", which is irrelevant here.
    rule = trained.baselines["rule_tenure_days"]
    assert rule["roc_auc"] < 0.62
    assert auc > rule["roc_auc"] + 0.1
    lr = trained.baselines["logistic_regression"]
    assert lr["n"] == trained.metrics["n"] and lr["roc_auc"] > 0.7  # LR sees the same signal
    # Calibrated (no resampling): predicted churners close to actual on test.
    assert abs(trained.metrics["expected_churners"] - trained.metrics["actual_churners"]) < 0.25 * trained.metrics["actual_churners"]


def test_features_exclude_ignored_and_null_columns(trained):
    assert DRIVER in trained.features and "monthly_value" in trained.features
    assert "_leak" not in trained.features and "all_null" not in trained.features
    assert trained.feature_spec.categorical["plan"] == ["basic", "enterprise", "pro"]
    assert 0 <= trained.best_iteration < trained.params["num_boost_round"]
    assert trained.booster.num_boosted_rounds() == trained.best_iteration + 1
    assert trained.params["nthread"] == 2 and trained.params["tree_method"] == "hist"


def test_fallback_for_single_snapshot():
    obs = make_observations(400, 1, seed=3, scoring_date=False)
    result = train_model(obs, seed=1, params={"num_boost_round": 50})
    assert result.split_method.startswith("random_customer_split (single-snapshot data:")
    train_ids = set(obs["customer_id"]) - set(result.test_predictions["customer_id"])
    test_ids = set(result.test_predictions["customer_id"])
    assert len(test_ids) == 100 and len(train_ids) == 300  # 75/25 of customers
    # Stratified: test churn rate close to overall churn rate.
    rate = obs["label"].mean()
    assert abs(result.test_predictions["label"].mean() - rate) < 0.02
    assert result.split["train_rows"] == 300 and result.split["test_rows"] == 100


def test_fallback_when_churn_only_in_final_period():
    obs = make_observations(400, 3, seed=4, scoring_date=False)
    last = obs["observation_date"].max()
    obs.loc[obs["observation_date"] < last, "label"] = 0.0  # no churn observed before the final period
    result = train_model(obs, seed=0, params={"num_boost_round": 50})
    assert result.split_method.startswith("random_customer_split (single-snapshot data:")
    assert "no churners in train" in result.split_method
    # Fallback uses only the latest labelled date.
    assert result.split["train_dates"] == result.split["test_dates"] == [last.date().isoformat()]
    assert result.split["test_positives"] > 0 and result.split["train_positives"] > 0


def test_rule_prefers_days_since_last_activity_when_present():
    obs = make_observations(300, 3, seed=5, scoring_date=False)
    obs["days_since_last_activity"] = obs[DRIVER]
    result = train_model(obs, params={"num_boost_round": 30})
    rule = result.baselines["rule_days_since_last_activity"]
    test = obs[obs["observation_date"] == obs["observation_date"].max()]
    assert rule["roc_auc"] == pytest.approx(roc_auc_score(test["label"], test["days_since_last_activity"]))
    assert "rule_tenure_days" not in result.baselines


def test_training_is_deterministic_for_a_seed():
    obs = make_observations(200, 3, seed=6, scoring_date=False)
    a = train_model(obs, seed=7, params={"num_boost_round": 40})
    b = train_model(obs, seed=7, params={"num_boost_round": 40})
    np.testing.assert_array_equal(a.test_predictions["churn_probability"], b.test_predictions["churn_probability"])


def test_rejects_data_without_both_classes():
    obs = make_observations(100, 2, seed=8, scoring_date=False)
    obs["label"] = 0.0
    with pytest.raises(ValueError):
        train_model(obs)


def test_accepts_duckdb_dtypes():
    """DuckDB hands back nullable Int32 labels, Int64/boolean features and untyped
    all-null columns; training and scoring must cope with all of them."""
    import duckdb

    from ml.features import load_frame
    from ml.score import score

    obs = make_observations(300, 3, seed=9).drop(columns=["all_null"])
    con = duckdb.connect()
    con.register("src", obs)
    con.sql(
        "create table obs as select * exclude (label), label::int as label, "
        "(noise * 10)::bigint as int_feature, (noise > 0) as bool_feature, "
        "null::varchar as all_null, tenure_days::decimal(10, 2) as tenure_dec from src"
    )
    df = load_frame(con, "obs")
    assert str(df["label"].dtype) == "Int32"  # the case being exercised
    result = train_model(df, params={"num_boost_round": 30})
    assert {"int_feature", "bool_feature", "tenure_dec"} <= set(result.feature_spec.numeric)
    assert "all_null" not in result.features
    out = score(result, df[df["label"].isna()])
    assert len(out) == 300 and out["churn_probability"].between(0, 1).all()
