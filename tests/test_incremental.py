"""Incremental daily run == full rebuild (issue #6).

On a small synthetic dataset (all six tables): load and build everything up to day D, deliver
one more file per table with day D+1's rows and run incrementally (the loader appends only the
new files, fct_customer_period recomputes only the touched periods); separately load and build
all the data from scratch into another warehouse. Every raw, staging, intermediate, snapshot
and mart table must then hold exactly the same rows, for both churn definitions.
"""

from __future__ import annotations

import json
from datetime import date, timedelta
from pathlib import Path

import duckdb
import pytest
from pipeline_helpers import dbt_build

from orchestration.ingest.contract import TABLES
from orchestration.ingest.loader import load_table
from orchestration.ingest.sources.synthetic import write_landing

FROM = date(2024, 6, 1)  # D is the first day from here on after which every table has rows on D+1

# the date that places a row on a day (a row is delivered on that day)
EVENT_DAY = {
    "customers": "signup_date",
    "subscriptions": "start_date",
    "orders": "order_date",
    "interactions": "cast(occurred_at as date)",
    "support_tickets": "cast(opened_at as date)",
    "loyalty_events": "cast(occurred_at as date)",
}

# Columns that record WHEN something was loaded or built, not what: they differ between a warehouse
# built in two runs and one built in one run by design, so they are left out of the comparison.
LOAD_TIME_COLUMNS = {
    "_loaded_at": "raw rows: the first load time of the file version they came from",
    "quarantined_at": "raw.quarantine: the load time of the quarantined row",
    "first_seen_at": "raw.landing_manifest: when the file version was first seen",
    "status_changed_at": "raw.landing_manifest: when its status last changed",
    "load_seq": "raw.landing_manifest: a warehouse-wide sequence over all tables' files (relative order per "
                "table, which the duplicate rule uses, is the same)",
    "dbt_scd_id": "snapshot: hash including the snapshot time",
    "dbt_updated_at": "snapshot: the time of the snapshot run",
    "dbt_valid_from": "snapshot: the time of the snapshot run that first saw the version",
    "attributes_valid_from": "dim_customers: dbt_valid_from of the current version",
}
# Tables that are bookkeeping of the runs themselves, not data
SKIPPED_TABLES = {
    ("raw", "landing_state"): "per-table load state (fingerprints, build times, last load mode)",
    ("intermediate", "int_incremental_boundary"): "a view of what the next run would recompute (bookkeeping)",
}
SCHEMAS = ("raw", "staging", "snapshots", "intermediate", "marts", "ml")
# the marts and the ML tables (features, observations, scoring set)
SELECT = ("+fct_churn_segment_period", "+fct_churn_period", "+fct_cohort_retention", "+ml_observations", "+ml_scoring_set")


# the incremental dbt models, each with its own state row (meta.incremental_state)
INCREMENTAL_MODELS = ("fct_customer_period", "int_customer_period_activity", "int_customer_values", "int_mrr_movements")

def _split_landing(tmp: Path) -> tuple[Path, dict[str, Path], date]:
    """Synthetic data cut at D+1: the landing folder with rows up to D, one file per table with D+1's rows, and D."""
    src = tmp / "synthetic"
    write_landing(src, n_customers=400, seed=11)
    landing, later = tmp / "landing", tmp / "next_day"
    con = duckdb.connect()
    days = " intersect ".join(f"select distinct {e} from read_parquet('{src}/{t}/*.parquet') where {e} > date '{FROM}'"
                              for t, e in EVENT_DAY.items())
    NEXT = con.execute(f"select min(d) from ({days}) x(d)").fetchone()[0]
    DAY = NEXT - timedelta(days=1)
    # children of customers who sign up later would be quarantined on day D; deliver those customers on D
    early_customers = " union ".join(
        f"select customer_id from read_parquet('{src}/{t}/*.parquet') where {EVENT_DAY[t]} <= date '{DAY}'"
        for t in EVENT_DAY if t != "customers")
    day_files = {}
    for t, day_expr in EVENT_DAY.items():
        (landing / t).mkdir(parents=True)
        (later / t).mkdir(parents=True)
        on_day = f"{day_expr} <= date '{DAY}'"
        if t == "customers":
            on_day = f"({on_day} or customer_id in ({early_customers}))"
        base = f"select * from read_parquet('{src}/{t}/*.parquet')"
        con.execute(f"copy ({base} where {on_day} order by all) to '{landing / t / 'part-00000.parquet'}'")
        day_files[t] = later / t / "part-00001.parquet"
        con.execute(f"copy ({base} where not {on_day} and {day_expr} = date '{NEXT}' order by all) to '{day_files[t]}'")
        # every event table gets a D+1 file (the test is about appending one)
        assert con.execute(f"select count(*) from '{day_files[t]}'").fetchone()[0] > 0, t
    con.close()
    return landing, day_files, DAY


def _load(settings, landing: Path) -> dict[str, str]:
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(settings.warehouse_path))
    try:
        return {t: load_table(con, landing, t).load_mode for t in TABLES}
    finally:
        con.close()


def _tables(con) -> list[tuple[str, str]]:
    return [tuple(r) for r in con.execute(
        f"select table_schema, table_name from information_schema.tables "
        f"where table_schema in ({', '.join(repr(s) for s in SCHEMAS)}) order by 1, 2").fetchall()
        if tuple(r) not in SKIPPED_TABLES]


def _compare(a: Path, b: Path) -> dict[str, int]:
    con = duckdb.connect()
    con.execute(f"attach '{a}' as a (read_only)")
    con.execute(f"attach '{b}' as b (read_only)")
    con.execute("use a")
    tables_a = _tables(con)
    con.execute("use b")
    tables_b = _tables(con)
    con.execute("use memory")
    assert tables_a == tables_b
    sizes = {}
    for schema, name in tables_a:
        cols = [r[0] for r in con.execute(
            "select column_name from information_schema.columns where table_catalog = 'a' and table_schema = ? "
            "and table_name = ? order by ordinal_position", [schema, name]).fetchall()]
        cols_b = [r[0] for r in con.execute(
            "select column_name from information_schema.columns where table_catalog = 'b' and table_schema = ? "
            "and table_name = ? order by ordinal_position", [schema, name]).fetchall()]
        assert cols == cols_b, (schema, name)
        keep = ", ".join(f'"{c}"' for c in cols if c not in LOAD_TIME_COLUMNS)
        n_a = con.execute(f'select count(*) from a."{schema}"."{name}"').fetchone()[0]
        n_b = con.execute(f'select count(*) from b."{schema}"."{name}"').fetchone()[0]
        assert n_a == n_b, (schema, name, n_a, n_b)
        for x, y in (("a", "b"), ("b", "a")):
            diff = con.execute(f'select {keep} from {x}."{schema}"."{name}" except all '
                               f'select {keep} from {y}."{schema}"."{name}" limit 5').fetchall()
            assert not diff, (schema, name, f"rows in {x} only", diff)
        sizes[f"{schema}.{name}"] = n_a
    con.close()
    return sizes


@pytest.mark.parametrize("definition", ["contractual", "inactivity"])
def test_incremental_day_equals_full_rebuild(pipeline_env, tmp_path, definition):
    landing, day_files, DAY = _split_landing(tmp_path)
    NEXT = DAY + timedelta(days=1)
    env = {"CHURN_SOURCE": "folder", "CHURN_LANDING_DIR": str(landing), "CHURN_DEFINITION": definition}

    # A: the daily warehouse: full build on data up to D ...
    a = pipeline_env(**env, CHURN_DATA_DIR=str(tmp_path / "a"), CHURN_AS_OF_DATE=DAY.isoformat())
    assert set(_load(a, landing).values()) == {"full"}
    dbt_build(a, SELECT)
    wa = a.warehouse_path
    # ... mark the first period's rows: an incremental build must leave periods before its boundary alone
    # (days_since_last_activity of the period facts is read by nothing downstream, so the marked
    # rows change nothing else)
    with duckdb.connect(str(wa)) as con:
        first = con.execute("select min(period_start) from marts.fct_customer_period").fetchone()[0]
        n_cp_day = con.execute("select count(*) from marts.fct_customer_period").fetchone()[0]
        con.execute("update marts.fct_customer_period set days_since_last_activity = days_since_last_activity + 100000 where period_start = ?", [first])
        # the same for the activity aggregates: the first period's touches are read by no window of
        # a recomputed period (it folds into the row before the windows), so a mark changes nothing
        first_activity = con.execute("select min(period_start) from intermediate.int_customer_period_activity").fetchone()[0]
        con.execute("update intermediate.int_customer_period_activity set touches = touches + 100000 where period_start = ?",
                    [first_activity])

    # ... then D+1 arrives: one new file per table, loaded by appending, and an incremental dbt build
    for t, f in day_files.items():
        f.rename(landing / t / f.name)
    a = pipeline_env(**env, CHURN_DATA_DIR=str(tmp_path / "a"), CHURN_AS_OF_DATE=NEXT.isoformat())
    modes = _load(a, landing)
    assert modes == {t: "append" for t in TABLES}, modes
    dbt_build(a, SELECT)
    with duckdb.connect(str(wa)) as con:
        # the boundary this build used, as recorded after it (the view now reads the advanced state)
        boundary, watermark = con.execute(
            "select boundary, watermark from meta.incremental_state where model = 'fct_customer_period'").fetchone()
        # the touched-period rule: the earliest new event (D+1) and the previous as-of (D), minus the margin
        params = con.execute("select inactivity_days, grace_days from intermediate.int_run_parameters").fetchone()
        assert boundary == DAY - timedelta(days=params[0] + params[1] + 1) and watermark is not None
        untouched = con.execute("select count(*) from marts.fct_customer_period where period_end < ?",
                                [boundary]).fetchone()[0]
        assert untouched > 0
        # the marked rows were not rebuilt, so they still carry the mark; take it off for the comparison
        marked = con.execute("select count(*) filter (where days_since_last_activity >= 100000), count(*) from marts.fct_customer_period "
                             "where period_start = ?", [first]).fetchone()
        assert marked[0] == marked[1] > 0
        con.execute("update marts.fct_customer_period set days_since_last_activity = days_since_last_activity - 100000 where period_start = ?", [first])
        marked = con.execute("select count(*) filter (where touches >= 100000), count(*) from intermediate.int_customer_period_activity "
                             "where period_start = ?", [first_activity]).fetchone()
        assert marked[0] == marked[1] > 0
        con.execute("update intermediate.int_customer_period_activity set touches = touches - 100000 where period_start = ?",
                    [first_activity])
        # only the periods from the one holding the boundary were aggregated again
        recomputed = con.execute("select count(*), min(period_start) from intermediate.int_customer_period_activity "
                                 "where period_start >= date_trunc(?, ?::date)", [a.period_grain, boundary]).fetchone()
        total_activity = con.execute("select count(*) from intermediate.int_customer_period_activity").fetchone()[0]
        assert 0 < recomputed[0] < total_activity
        n_cp = con.execute("select count(*) from marts.fct_customer_period").fetchone()[0]
        # every incremental model records its own state; here all were built from the same data
        states = con.execute("select model, boundary, watermark from meta.incremental_state order by 1").fetchall()
        assert states == [(m, boundary, watermark) for m in INCREMENTAL_MODELS], states
    run = json.loads((a.data_dir / "dbt_target" / "run_results.json").read_text())
    assert next(r["status"] for r in run["results"] if r["unique_id"].endswith(".fct_customer_period")) == "success"
    # fewer customer-period rows recomputed than a full build writes
    assert 0 < n_cp - untouched < n_cp and n_cp >= n_cp_day

    # B: everything from scratch in one run
    b = pipeline_env(**env, CHURN_DATA_DIR=str(tmp_path / "b"), CHURN_AS_OF_DATE=NEXT.isoformat())
    assert set(_load(b, landing).values()) == {"full"}
    dbt_build(b, SELECT)

    sizes = _compare(wa, b.warehouse_path)
    assert sizes["marts.fct_customer_period"] == n_cp and sizes["raw.orders"] > 0
    assert {"staging.stg_crm__orders", "intermediate.int_customer_spans", "snapshots.customers_snapshot",
            "marts.fct_churn_period", "marts.dim_customers", "raw.quarantine", "raw.duplicates"} <= set(sizes)


def test_changed_model_code_makes_incremental_models_recompute_everything(pipeline_env, tmp_path):
    """Rows kept by an incremental build must come from the same code: a changed model resets the boundary."""
    import shutil

    from orchestration.settings import REPO_ROOT

    landing, day_files, DAY = _split_landing(tmp_path)
    s = pipeline_env(CHURN_SOURCE="folder", CHURN_LANDING_DIR=str(landing), CHURN_DATA_DIR=str(tmp_path / "w"),
                     CHURN_AS_OF_DATE=DAY.isoformat())
    _load(s, landing)
    dbt_build(s)

    def boundaries() -> dict:
        with duckdb.connect(str(s.warehouse_path), read_only=True) as con:
            return dict(con.execute("select model, boundary from intermediate.int_incremental_boundary").fetchall())

    # same code, nothing new: every incremental model would recompute only from its boundary
    assert all(b is not None for b in boundaries().values()) and set(boundaries()) == set(INCREMENTAL_MODELS)
    # the same project with one model's SQL changed (a comment is enough: dbt's checksum is of the file)
    copy = tmp_path / "dbt_project"
    shutil.copytree(REPO_ROOT / "dbt_project", copy, ignore=shutil.ignore_patterns("target", "logs", "dbt_packages"))
    model = copy / "models" / "marts" / "fct_customer_period.sql"
    model.write_text(model.read_text() + "\n-- changed\n")
    dbt_build(s, ("int_incremental_boundary",), project_dir=copy)
    assert boundaries() == dict.fromkeys(INCREMENTAL_MODELS)


def test_a_partition_backfill_recomputes_the_periods_from_its_first_day(pipeline_env, tmp_path):
    """A partitioned run for days from X (a backfill) recomputes every period ending on or after
    X - inactivity - grace - 1 even when nothing new was loaded; a run without one leaves them."""
    landing, _, DAY = _split_landing(tmp_path)
    s = pipeline_env(CHURN_SOURCE="folder", CHURN_LANDING_DIR=str(landing), CHURN_DATA_DIR=str(tmp_path / "w"),
                     CHURN_AS_OF_DATE=DAY.isoformat())
    _load(s, landing)
    dbt_build(s, SELECT)
    X = DAY - timedelta(days=200)
    margin = timedelta(days=s.inactivity_days + s.grace_days + 1)
    # a period that ends between X's boundary and the automatic one (DAY - margin), and one before X's
    with duckdb.connect(str(s.warehouse_path)) as con:
        inside, before = con.execute(
            "select min(period_start) filter (where period_end >= ? and period_end < ?), "
            "max(period_start) filter (where period_end < ?) from marts.fct_customer_period",
            [X - margin, DAY - margin, X - margin]).fetchone()
        assert inside is not None and before is not None
        expected = con.execute("select * from marts.fct_customer_period order by all").fetchall()
        mark = ("update marts.fct_customer_period set days_since_last_activity = days_since_last_activity + 100000 "
                "where period_start in (?, ?)")
        con.execute(mark, [inside, before])

    def marked() -> dict:
        with duckdb.connect(str(s.warehouse_path), read_only=True) as con:
            return dict(con.execute("select period_start, bool_and(days_since_last_activity >= 100000) "
                                    "from marts.fct_customer_period where period_start in (?, ?) group by 1",
                                    [inside, before]).fetchall())

    # no partition, nothing new: both periods are before the boundary, so both stay marked
    dbt_build(s, SELECT)
    assert marked() == {inside: True, before: True}
    # the backfill from X: the period after X's boundary is recomputed, the one before is not
    dbt_build(s, SELECT, recompute_from=X)
    assert marked() == {inside: False, before: True}
    with duckdb.connect(str(s.warehouse_path)) as con:
        assert con.execute("select boundary from meta.incremental_state where model = 'fct_customer_period'"
                           ).fetchone()[0] == X - margin
        con.execute(mark.replace("+ 100000", "- 100000"), [before, before])
        assert con.execute("select * from marts.fct_customer_period order by all").fetchall() == expected
