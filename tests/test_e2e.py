"""End-to-end: the whole Dagster job on synthetic data and on real CDNOW, into a temp dir."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import date, timedelta
from importlib import metadata
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest
from pipeline_helpers import DATA



PUBLISHED = ["fct_churn_period", "fct_churn_segment_period", "fct_cohort_retention", "customer_churn_scores",
             "churn_risk_by_segment"]
PERIOD_COLS = ["period_start", "period_end", "customers_start", "customers_new", "customers_reactivated",
               "customers_churned", "customers_end", "churn_rate"]


def run_job(instance: dg.DagsterInstance | None = None, tags: dict[str, str] | None = None):
    """The job as `make run` runs it: the newest data-day partition, unless tags name a range."""
    from orchestration.definitions import defs
    from orchestration.partitions import data_day_partitions, latest_partition_key

    return defs.resolve_job_def("churn_pipeline").execute_in_process(
        instance=instance or dg.DagsterInstance.ephemeral(), raise_on_error=False,
        partition_key=None if tags else latest_partition_key(data_day_partitions()), tags=tags)


def read(settings, name: str) -> pd.DataFrame:
    return pd.read_parquet(settings.published_dir / f"{name}.parquet")


def assert_published_set(settings) -> dict:
    manifest = json.loads((settings.published_dir / "manifest.json").read_text())
    assert [t["name"] for t in manifest["tables"]] == PUBLISHED
    con = duckdb.connect(str(settings.published_dir / "churn.duckdb"), read_only=True)
    for t in manifest["tables"]:
        df = read(settings, t["name"])
        # the Parquet file, the DuckDB copy and the manifest agree
        assert len(df) == t["rows"] == con.execute(f"select count(*) from {t['name']}").fetchone()[0]
    con.close()
    period = read(settings, "fct_churn_period")
    assert set(PERIOD_COLS) <= set(period.columns)
    identity = period.customers_start + period.customers_new + period.customers_reactivated - period.customers_churned
    assert (identity == period.customers_end).all()
    rate = period.customers_churned / period.customers_start
    assert ((rate - period.churn_rate).abs().fillna(0) < 1e-12).all()
    scores = read(settings, "customer_churn_scores")
    assert scores.churn_probability.between(0, 1).all()
    assert set(scores.risk_tier) <= {"high", "medium", "low"}
    seg = read(settings, "churn_risk_by_segment")
    overall = seg[seg.segment_dimension == "all"].iloc[0]
    # a second method: the 'all' segment equals sums over the customer scores
    assert overall.customers == len(scores)
    assert abs(overall.expected_churners - scores.churn_probability.sum()) < 1e-6
    return manifest


def test_e2e_synthetic(pipeline_env):
    s = pipeline_env(CHURN_SOURCE="synthetic", CHURN_SYNTHETIC_CUSTOMERS="600", CHURN_SEED="7")
    instance = dg.DagsterInstance.ephemeral()
    result = run_job(instance)
    assert result.success
    manifest = assert_published_set(s)
    assert manifest["source"] == "synthetic" and manifest["churn_definition"] == "contractual"
    # every active customer (an open span at the as-of date) gets exactly one score
    con = duckdb.connect(str(s.warehouse_path), read_only=True)
    active = con.execute("select count(distinct customer_id) from intermediate.int_customer_spans where span_end is null").fetchone()[0]
    con.close()
    scores = read(s, "customer_churn_scores")
    assert len(scores) == active == scores.customer_id.nunique()
    # all six raw tables were ingested (synthetic has every table)
    checks = {e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data.passed
              for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}
    assert checks["gx_raw_interactions"] and checks["gx_raw_loyalty_events"] and checks["gx_fct_churn_period"]
    assert_column_schemas(result, s)
    # dbt tables carry their row count; views carry none (counting a view re-runs its query)
    mats = {e.asset_key.to_user_string(): e.materialization.metadata
            for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"}
    con = duckdb.connect(str(s.warehouse_path), read_only=True)
    n_cp = con.execute("select count(*) from marts.fct_customer_period").fetchone()[0]
    con.close()
    assert mats["marts/fct_customer_period"]["dagster/row_count"].value == n_cp > 0
    assert "dagster/row_count" not in mats["staging/stg_crm__orders"]
    assert_risk_by_segment_equals_a_pandas_groupby(s)
    assert_backfill_is_one_run_from_its_first_day(instance, s)


def assert_risk_by_segment_equals_a_pandas_groupby(s) -> None:
    """Every segment row of ml.churn_risk_by_segment (unsuppressed, in the warehouse) equals a
    groupby of the scores merged with the scoring set's attributes in pandas (a second method)."""
    con = duckdb.connect(str(s.warehouse_path), read_only=True)
    seg = con.sql("select * from ml.churn_risk_by_segment").df()
    scores = con.sql("select * from ml.customer_churn_scores").df()
    attrs = con.sql("select * from ml.ml_scoring_set").df()
    con.close()
    dims = sorted(set(seg.segment_dimension) - {"all"})
    assert len(dims) >= 3
    merged = scores.merge(attrs[["customer_id", *dims]], on="customer_id", how="left")
    checked = 0
    for dim in dims:
        values = merged[dim].astype(object).where(merged[dim].notna(), None)
        expected = merged.assign(v=[("(missing)" if v is None else str(v)) for v in values]).groupby("v")
        got = seg[seg.segment_dimension == dim].set_index("segment_value")
        assert sorted(got.index) == sorted(expected.groups), dim
        for value, rows in expected:
            row = got.loc[value]
            assert row.customers == len(rows)
            assert abs(row.expected_churners - rows.churn_probability.sum()) < 1e-9
            assert abs(row.expected_mrr_at_risk - rows.expected_mrr_at_risk.sum()) < 1e-6
            assert row.high_risk_customers == int((rows.churn_probability >= s.high_risk_threshold).sum())
            checked += 1
    assert checked > 6


def assert_backfill_is_one_run_from_its_first_day(instance, s) -> None:
    """A backfill of 11 data days, as one run (BackfillPolicy.single_run): dbt recomputes from the
    first day's boundary, each day's partition is recorded, and the published figures are unchanged."""
    from orchestration.partitions import backfill_tags, data_day_partitions

    with duckdb.connect(str(s.warehouse_path), read_only=True) as con:
        as_of, inactivity, grace = con.execute(
            "select as_of_date, inactivity_days, grace_days from intermediate.int_run_parameters").fetchone()
    before = read(s, "fct_churn_period")
    start, end = as_of - timedelta(days=40), as_of - timedelta(days=30)
    result = run_job(instance, tags=backfill_tags(f"{start}:{end}", data_day_partitions()))
    assert result.success
    with duckdb.connect(str(s.warehouse_path), read_only=True) as con:
        boundary = con.execute("select boundary from meta.incremental_state where model = 'fct_customer_period'").fetchone()[0]
    assert boundary == start - timedelta(days=inactivity + grace + 1)
    days = sorted(e.materialization.partition for e in result.all_events
                  if e.event_type_value == "ASSET_MATERIALIZATION" and e.asset_key.to_user_string() == "marts/fct_customer_period")
    assert days == [(start + timedelta(days=i)).isoformat() for i in range(11)]
    # recomputing periods from the same data changes no figure
    pd.testing.assert_frame_equal(read(s, "fct_churn_period"), before)


def assert_column_schemas(result, settings) -> None:
    """Each published asset's TableSchema lists the file's real columns and types, each described in dbt YAML."""
    from orchestration.published_columns import load_docs

    docs = load_docs()
    mats = {e.asset_key.to_user_string(): e.materialization.metadata
            for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"}
    con = duckdb.connect()
    for name in PUBLISHED:
        meta = mats[f"published/{name}"]
        schema = meta["dagster/column_schema"].schema
        path = str(settings.published_dir / f"{name}.parquet")
        real = con.execute("select column_name, lower(column_type) from (describe select * from read_parquet(?))",
                           [path]).fetchall()
        assert [(c.name, c.type) for c in schema.columns] == real, name
        for c in schema.columns:
            assert c.description and c.description == docs[name].columns[c.name], (name, c.name)
        assert meta["dagster/row_count"].value == len(read(settings, name))
    con.close()
    # pictures and numbers analysts plot over runs
    seg_meta = mats["churn_risk_by_segment"]
    assert "data:image/png;base64," in seg_meta["risk_by_segment"].value
    scores = read(settings, "customer_churn_scores")
    assert abs(seg_meta["mean_churn_probability"].value - scores.churn_probability.mean()) < 1e-9
    assert seg_meta["high_risk_customers"].value == int((scores.risk_tier == "high").sum())


def _cdnow_frame() -> pd.DataFrame:
    path = metadata.distribution("lifetimes").locate_file("lifetimes/datasets/CDNOW_master.txt")
    df = pd.read_csv(path, sep=r"\s+", header=None, skiprows=1, names=["cid", "d", "n", "usd"], dtype={"cid": str, "d": str})
    df["d"] = pd.to_datetime(df["d"], format="%Y%m%d").dt.date
    return df


def _active_on(df: pd.DataFrame, t: date, n: int = 90) -> set[str]:
    # independent rule: active on day t iff a purchase fell on one of the n days t-(n-1) .. t
    return set(df.loc[(df.d >= t - timedelta(days=n - 1)) & (df.d <= t), "cid"])


def _active_at(df: pd.DataFrame, b: date, n: int = 90) -> set[str]:
    # active across boundary b = active on the day before b and on day b
    return _active_on(df, b - timedelta(days=1), n) & _active_on(df, b, n)


def test_e2e_cdnow_matches_an_independent_count(pipeline_env):
    s = pipeline_env(CHURN_SOURCE="cdnow")
    result = run_job()
    assert result.success
    assert_published_set(s)
    period = read(s, "fct_churn_period")
    period.index = pd.to_datetime(period.pop("period_start"))
    raw = _cdnow_frame()
    assert raw.cid.nunique() == 23570 and len(raw) == 69659
    # 18 months 1997-01 .. 1998-06 (as-of = last purchase 1998-06-30, so June is complete)
    assert len(period) == 18 and str(period.index.max())[:10] == "1998-06-01"
    first = raw.groupby("cid").d.min()
    jan_new = int(((first >= date(1997, 1, 1)) & (first < date(1997, 2, 1))).sum())
    assert period.loc[pd.Timestamp("1997-01-01"), "customers_new"] == jan_new
    months = [date(1997 + (m - 1) // 12, (m - 1) % 12 + 1, 1) for m in range(1, 20)]
    for ps, pe in zip(months[:-1], months[1:]):
        start, end = _active_at(raw, ps), _active_at(raw, pe)
        row = period.loc[pd.Timestamp(ps)]
        assert row.customers_start == len(start), ps
        assert row.customers_churned == len(start - end), ps
        assert row.customers_end == len(end), ps
    scores = read(s, "customer_churn_scores")
    assert len(scores) == len(_active_at(raw, date(1998, 7, 1)))


def test_blocking_check_stops_publishing(pipeline_env, tmp_path):
    # publish a good set first
    s = pipeline_env(CHURN_SOURCE="synthetic", CHURN_SYNTHETIC_CUSTOMERS="300")
    assert run_job().success
    before = {p.name: p.read_bytes() for p in s.published_dir.iterdir() if p.is_file()}

    bad = tmp_path / "bad"
    bad.mkdir()
    landing = s.resolved_landing_dir
    for table in ("customers", "subscriptions"):
        src = landing / table
        df = pd.concat([pd.read_parquet(p) for p in sorted(src.iterdir())]) if src.is_dir() else pd.read_parquet(landing / f"{table}.parquet")
        if table == "customers":
            # An exact duplicate row would simply be dropped (and reported); a second VERSION of a
            # customer in the same file with the same updated_at cannot be ordered, so it must stop the run.
            conflict = df.head(1).assign(country="ZZ")
            df = pd.concat([df, conflict])
            first, n_rows = str(df.customer_id.iloc[0]), len(df)
        df.to_csv(bad / f"{table}.csv", index=False)
    s = pipeline_env(CHURN_SOURCE="folder", CHURN_LANDING_DIR=str(bad))
    result = run_job()
    assert not result.success
    evals = [e.asset_check_evaluation_data for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"]
    failed = {e.check_name: e for e in evals if not e.passed}
    assert sorted(failed) == ["batch_quality", "gx_raw_customers"]
    assert all(e.asset_key.path == ["raw", "customers"] for e in failed.values())
    assert "customer_id" in failed["gx_raw_customers"].description and "unique" in failed["gx_raw_customers"].description
    assert (f"1 customer_id value(s) have conflicting versions in one file with the same updated_at, e.g. '{first}' in "
            f"{bad / 'customers.csv'} rows 1, {n_rows}") in failed["batch_quality"].description
    # nothing downstream ran, and the published files are byte-for-byte the earlier ones
    materialized = {e.asset_key.to_user_string() for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"}
    assert not any(k.startswith("published/") for k in materialized) and "fct_churn_period" not in materialized
    after = {p.name: p.read_bytes() for p in s.published_dir.iterdir() if p.is_file()}
    assert after == before


def test_published_duckdb_opens_in_duckdb_1_4(pipeline_env):
    path = os.environ.get("DUCKDB14_PATH")
    if not path or not Path(path).exists():
        if os.environ.get("CI") == "true":
            pytest.fail("DUCKDB14_PATH is not set; `make test` installs DuckDB 1.4 into .venv/duckdb14")
        pytest.skip("DuckDB 1.4 client not installed (run through `make test`)")
    s = pipeline_env(CHURN_SOURCE="synthetic", CHURN_SYNTHETIC_CUSTOMERS="300")
    assert run_job().success
    code = ("import duckdb, sys; assert duckdb.__version__.startswith('1.4'), duckdb.__version__; "
            "c = duckdb.connect(sys.argv[1], read_only=True); "
            "print(c.execute('select count(*) from fct_churn_period').fetchone()[0])")
    out = subprocess.run([sys.executable, "-c", code, str(s.published_dir / "churn.duckdb")],
                         env={**os.environ, "PYTHONPATH": path}, capture_output=True, text=True)
    assert out.returncode == 0, out.stderr
    assert int(out.stdout) == len(read(s, "fct_churn_period"))
