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
