"""GX validates each incoming batch (orchestration/checks/gx_checks.batch_filter), not all history.

After an append, the batch is the raw rows loaded after the watermark of dbt's last build
(meta.incremental_state); after a full load, or before any dbt build, the whole table.
"""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import duckdb

from expectations.runner import validate_frame
from expectations.suites import raw_table_suite
from orchestration.checks.gx_checks import batch_filter, raw_frame
from orchestration.ingest.contract import TABLES
from orchestration.ingest.loader import load_table

DAY1, DAY2 = datetime(2024, 3, 1, 6), datetime(2024, 3, 2, 6)
HEADER = "order_id,customer_id,order_date,amount\n"


def _write(folder: Path, name: str, text: str) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    (folder / name).write_text(text)


def _dbt_built(con, watermark: datetime) -> None:
    # what dbt's on-run-end records after a successful build (dbt_project/macros/incremental.sql)
    con.execute("create schema if not exists meta")
    con.execute("create or replace table meta.incremental_state as select 'fct_customer_period' as model, "
                "?::timestamp as watermark", [watermark])


def _validate(con):
    suite = raw_table_suite(TABLES["orders"])
    batch, what = batch_filter(con, "orders")
    df, info = raw_frame(con, "orders", suite, batch=batch)
    return what, info["rows_validated"], sorted(df["order_id"]), validate_frame(df, suite, batch_name="raw_orders").success


def test_only_the_appended_batch_is_validated_until_dbt_consumed_it(tmp_path):
    con = duckdb.connect(str(tmp_path / "w.duckdb"))
    land = tmp_path / "landing"
    _write(land / "customers", "c.csv", "customer_id,signup_date\nA,2024-01-01\nB,2024-01-01\n")
    _write(land / "orders", "day1.csv", HEADER + "o1,A,2024-02-28,5\no2,B,2024-02-29,7\n")
    load_table(con, land, "customers", run_ts=DAY1)
    load_table(con, land, "orders", run_ts=DAY1)
    # first load, no dbt build yet: the whole table
    assert _validate(con) == ("whole table", 2, ["o1", "o2"], True)

    _dbt_built(con, DAY1)
    _write(land / "orders", "day2.csv", HEADER + "o3,A,2024-03-01,9\n")
    assert load_table(con, land, "orders", run_ts=DAY2).load_mode == "append"
    # the new day only
    assert _validate(con) == ("rows loaded after 2024-03-01 06:00:00", 1, ["o3"], True)

    # a bad row in the batch (a duplicated key the loader let through, inserted by hand) fails it ...
    con.execute("insert into raw.orders by name select 'o3' as order_id, 'B' as customer_id, "
                "date '2024-03-01' as order_date, 1.0 as amount, 'x' as _source_file, 9 as _row_number, "
                "?::timestamp as _loaded_at", [DAY2])
    assert _validate(con)[1:] == (2, ["o3", "o3"], False)
    # ... and stays in the batch until a dbt build consumed it (a failed check stops dbt)
    _write(land / "orders", "day3.csv", HEADER + "o4,A,2024-03-02,1\n")
    load_table(con, land, "orders", run_ts=datetime(2024, 3, 3, 6))
    assert _validate(con)[2:] == (["o3", "o3", "o4"], False)

    # a full rebuild (a changed file) is validated whole again
    _dbt_built(con, datetime(2024, 3, 3, 6))
    _write(land / "orders", "day1.csv", HEADER + "o1,A,2024-02-28,6\no2,B,2024-02-29,7\n")
    assert load_table(con, land, "orders", run_ts=datetime(2024, 3, 4, 6)).load_mode == "full"
    what, n, ids, ok = _validate(con)
    assert (what, n, ids, ok) == ("whole table", 4, ["o1", "o2", "o3", "o4"], True)
    con.close()
