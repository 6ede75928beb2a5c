"""Feature selection and encoding (ml.features)."""

from __future__ import annotations

import duckdb
import numpy as np
import pandas as pd
import pytest

from ml.features import FeatureSpec, feature_columns, fit_feature_spec, load_frame, to_matrix


def _frame() -> pd.DataFrame:
    return pd.DataFrame(
        {
            "customer_id": ["a", "b", "c", "d"],
            "observation_date": pd.to_datetime(["2024-01-31"] * 4),
            "label": [0, 1, 0, np.nan],
            "monthly_value": [10, 20, None, 40],
            "plan": pd.Series(["pro", "basic", None, "pro"], dtype="str"),
            "is_active": [True, False, True, True],
            "all_null": [None, None, None, None],
            "_batch": ["x", "x", "x", "x"],
            "signup_date": pd.to_datetime(["2020-01-01"] * 4),
        }
    )


def test_feature_columns_excludes_reserved_underscore_all_null_and_dates():
    assert feature_columns(_frame()) == ["monthly_value", "plan", "is_active"]


def test_fit_feature_spec_types_and_levels():
    spec = fit_feature_spec(_frame())
    assert spec.numeric == ["monthly_value", "is_active"]
    assert spec.categorical == {"plan": ["basic", "pro"]}
    assert spec.columns == ["monthly_value", "is_active", "plan"]
    assert "all_null" in spec.dropped and "signup_date" in spec.dropped
    assert FeatureSpec.from_dict(spec.to_dict()) == spec


def test_to_matrix_keeps_training_levels_and_maps_unseen_to_nan():
    spec = fit_feature_spec(_frame())
    new = pd.DataFrame(
        {
            "monthly_value": ["5", None],  # strings/None coerce to float
            "is_active": [False, True],
            "plan": ["enterprise", "pro"],  # 'enterprise' never seen in training
            "extra": [1, 2],
        },
        index=[10, 11],
    )
    x = to_matrix(new, spec)
    assert list(x.columns) == ["monthly_value", "is_active", "plan"]
    assert list(x.index) == [10, 11]
    assert x["monthly_value"].dtype == np.float64 and x["is_active"].dtype == np.float64
    assert x["monthly_value"].iloc[0] == 5.0 and np.isnan(x["monthly_value"].iloc[1])
    assert list(x["is_active"]) == [0.0, 1.0]
    assert isinstance(x["plan"].dtype, pd.CategoricalDtype)
    assert list(x["plan"].cat.categories) == ["basic", "pro"]
    assert pd.isna(x["plan"].iloc[0])
    # 'pro' keeps the code it had in training (index in the training levels)
    assert x["plan"].cat.codes.tolist() == [-1, 1]


def test_to_matrix_rejects_missing_feature():
    spec = fit_feature_spec(_frame())
    with pytest.raises(KeyError):
        to_matrix(pd.DataFrame({"monthly_value": [1.0]}), spec)


def test_high_cardinality_strings_are_dropped():
    df = pd.DataFrame({"customer_id": [str(i) for i in range(50)], "email": [f"u{i}@x" for i in range(50)], "monthly_value": 1.0})
    spec = fit_feature_spec(df, max_levels=10)
    assert "email" not in spec.columns and "email" in spec.dropped


def test_load_frame_reads_duckdb_and_validates_relation():
    con = duckdb.connect()
    con.sql("create schema marts")
    con.sql(
        "create table marts.obs as select * from (values "
        "('c1', date '2024-01-31', null::int, 9.5, 'pro'), ('c2', date '2024-01-31', null::int, 3.0, 'basic')) "
        "as t(customer_id, observation_date, label, monthly_value, plan) order by customer_id"
    )
    df = load_frame(con, "marts.obs")
    assert df["customer_id"].tolist() == ["c1", "c2"]
    assert df["observation_date"].iloc[0] == pd.Timestamp("2024-01-31")
    assert fit_feature_spec(df).categorical == {"plan": ["basic", "pro"]}
    for bad in ["obs; drop table marts.obs", "marts.obs.x", "1obs", "\"obs\"", "a b"]:
        with pytest.raises(ValueError):
            load_frame(con, bad)


def test_constant_columns_are_dropped_but_one_value_plus_nulls_is_kept():
    df = pd.DataFrame({"customer_id": ["a", "b", "c"], "orders_total": [0, 0, 0], "plan": ["x", "x", "x"],
                       "days_since_last_order": [5.0, None, None], "monthly_value": [1.0, 2.0, 3.0]})
    spec = fit_feature_spec(df)
    assert spec.dropped == {"orders_total": "constant", "plan": "constant"}
    # a single value with nulls still separates "has ordered" from "never ordered"
    assert spec.numeric == ["days_since_last_order", "monthly_value"]


# --------------------------------------------------------------------------- training sample


def _obs_table(n_customers: int = 3000, n_dates: int = 6):
    import duckdb

    con = duckdb.connect()
    con.execute(f"""create schema ml; create table ml.obs as
        select 'C' || lpad(c::varchar, 6, '0') as customer_id,
               date '2024-01-01' + to_months(d) as observation_date,
               case when (c * 7 + d) % 10 = 0 then 1 else 0 end as label,
               (c % 13) * 1.0 as f1
        from range({n_customers}) t(c), range({n_dates}) u(d)""")
    return con


def test_training_frame_below_the_bound_is_every_labelled_row():
    from ml.features import load_training_frame

    con = _obs_table(100, 3)
    df, info = load_training_frame(con, "ml.obs", max_rows=1000, seed=1)
    assert len(df) == 300 and info["rows_available"] == 300 and info["rows_used"] == 300 and not info["sampled"]


def test_training_sample_is_bounded_stratified_and_seeded():
    from ml.features import load_training_frame

    con = _obs_table()
    df, info = load_training_frame(con, "ml.obs", max_rows=1800, seed=1)
    full = con.sql("select * from ml.obs").df()
    assert info["sampled"] and info["rows_available"] == 18_000 and info["fraction"] == 0.1
    # at most the bound plus one row per stratum (label x date), rounding up
    assert 1800 <= len(df) == info["rows_used"] <= 1800 + 12
    # every stratum keeps the same fraction: churn rate per date unchanged
    got = df.groupby("observation_date")["label"].mean().to_numpy()
    want = full.groupby("observation_date")["label"].mean().to_numpy()
    assert abs(got - want).max() < 0.01
    assert df.groupby("observation_date").size().min() >= 290
    # deterministic per seed, different for another seed
    again, _ = load_training_frame(con, "ml.obs", max_rows=1800, seed=1)
    other, _ = load_training_frame(con, "ml.obs", max_rows=1800, seed=2)
    pd.testing.assert_frame_equal(df, again)
    assert set(df["customer_id"]) != set(other["customer_id"])


def test_max_train_rows_setting(monkeypatch):
    # read once, by the typed settings (ml/ reads no environment); the default is ml's
    from ml.features import DEFAULT_MAX_TRAIN_ROWS
    from orchestration.settings import SettingsError, load_settings

    monkeypatch.delenv("CHURN_MAX_TRAIN_ROWS", raising=False)
    assert load_settings().max_train_rows == DEFAULT_MAX_TRAIN_ROWS == 200_000
    monkeypatch.setenv("CHURN_MAX_TRAIN_ROWS", "1000")
    assert load_settings().max_train_rows == 1000
    monkeypatch.setenv("CHURN_MAX_TRAIN_ROWS", "-1")
    with pytest.raises(SettingsError, match="CHURN_MAX_TRAIN_ROWS=-1 must be >= 0"):
        load_settings()
