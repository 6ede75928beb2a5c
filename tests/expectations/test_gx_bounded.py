"""Bounded validation of large raw tables (orchestration/checks/gx_checks.raw_frame).

Above CHURN_GX_FULL_FRAME_ROWS rows, GX validates only the rows DuckDB selects as possibly
failing plus the table's first rows. These tests validate the same tables both ways (the
whole table, and the bounded frame forced with full_frame_limit=0) and require the same
result: the same failure lines (counts and sample values), evaluated and successful counts.
"""

from __future__ import annotations

import sys
from pathlib import Path

import duckdb
import numpy as np
import pytest

ROOT = Path(__file__).resolve().parents[2]
HERE = Path(__file__).resolve().parent
for p in (ROOT, HERE):
    if str(p) not in sys.path:
        sys.path.insert(0, str(p))

from expectations.runner import validate_frame  # noqa: E402
from expectations.suites import raw_table_suite  # noqa: E402
from orchestration.checks.gx_checks import SAMPLE_ROWS, raw_frame  # noqa: E402
from orchestration.ingest.contract import TABLES  # noqa: E402
from test_gx_runner import clean_frame  # noqa: E402


def _table(df, name: str) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    con.execute("create schema raw")
    con.register("df", df)
    con.execute(f"create table raw.{name} as select * from df")
    con.unregister("df")
    return con


def _both(con, name: str):
    suite = raw_table_suite(TABLES[name])
    whole, info_whole = raw_frame(con, name, suite, full_frame_limit=10**12)
    bounded, info = raw_frame(con, name, suite, full_frame_limit=0)
    assert info_whole["frame"] == "whole table" and "suspect rows" in info["frame"]
    return (validate_frame(whole, suite), validate_frame(bounded, raw_table_suite(TABLES[name])),
            len(whole), len(bounded))


def _same(a, b) -> None:
    assert (a.success, a.evaluated, a.successful, a.failures) == (b.success, b.evaluated, b.successful, b.failures)


@pytest.mark.parametrize("name", sorted(TABLES))
def test_clean_table_passes_both_ways(name):
    df = clean_frame(name, n=3 * SAMPLE_ROWS)
    whole, bounded, n_whole, n_bounded = _both(_table(df, name), name)
    assert whole.success and whole.failures == []
    _same(whole, bounded)
    assert n_bounded == SAMPLE_ROWS < n_whole  # clean rows past the first ones are not read


def test_every_kind_of_failure_is_reported_the_same_way():
    df = clean_frame("support_tickets", n=3 * SAMPLE_ROWS)
    late = np.arange(2 * SAMPLE_ROWS, 2 * SAMPLE_ROWS + 40)  # all past the first rows
    df.loc[late[:3], "ticket_id"] = df.loc[late[3], "ticket_id"]  # 4 rows share one key
    df.loc[late[5:7], "ticket_id"] = None
    df.loc[late[10:14], "customer_id"] = None
    df.loc[late[15:20], "satisfaction_score"] = 9.0
    df.loc[late[20], "satisfaction_score"] = 0.5
    df.loc[late[25:28], "resolved_at"] = df.loc[late[25:28], "opened_at"] - np.timedelta64(1, "h")
    whole, bounded, n_whole, n_bounded = _both(_table(df, "support_tickets"), "support_tickets")
    assert not whole.success and len(whole.failures) == 5  # null key, unique, null customer, range, order
    assert any("be_unique(ticket_id): 4 unexpected" in f for f in whole.failures)
    _same(whole, bounded)
    assert n_bounded < SAMPLE_ROWS + 40 < n_whole


def test_date_order_and_range_on_subscriptions():
    df = clean_frame("subscriptions", n=3 * SAMPLE_ROWS)
    rows = np.arange(2 * SAMPLE_ROWS, 2 * SAMPLE_ROWS + 10)
    df.loc[rows[:2], "end_date"] = df.loc[rows[:2], "start_date"]  # end must be after start
    df.loc[rows[7], "mrr"] = -5.0
    whole, bounded, _, _ = _both(_table(df, "subscriptions"), "subscriptions")
    assert not whole.success and len(whole.failures) == 2
    _same(whole, bounded)


def test_enumeration_on_orders():
    df = clean_frame("orders", n=3 * SAMPLE_ROWS)
    rows = np.arange(2 * SAMPLE_ROWS, 2 * SAMPLE_ROWS + 10)
    df.loc[rows[:3], "status"] = "lost"
    df.loc[rows[4], "amount"] = -1.0
    whole, bounded, _, _ = _both(_table(df, "orders"), "orders")
    assert not whole.success and len(whole.failures) == 2
    _same(whole, bounded)
