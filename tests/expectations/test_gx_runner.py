"""validate_frame: clean frames pass, each bad frame fails exactly what it violates.

Frames are built from the ingest contract and passed through DuckDB, so their
dtypes are what the pipeline's callers get from ``duckdb ... .df()``.
"""

from __future__ import annotations

import datetime as dt
import json
import re
import sys
import time
from pathlib import Path

import duckdb
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
if str(ROOT) not in sys.path:  # plain `pytest` (not `python -m pytest`) from anywhere
    sys.path.insert(0, str(ROOT))

from expectations import runner  # noqa: E402
from expectations.runner import ValidationSummary, validate_frame  # noqa: E402
from expectations.suites import churn_period_suite, raw_table_suite  # noqa: E402
from orchestration.ingest.contract import LINEAGE_COLUMNS, TABLES  # noqa: E402

BASE_DAY = dt.date(2024, 1, 1)
BASE_TS = dt.datetime(2024, 1, 1, 8, 0)


# --------------------------------------------------------------------------- frames


def _value(table, col, i: int, n_customers: int):
    """A contract-valid value for row i (optional columns are sometimes null)."""
    name = col.name
    if name == table.primary_key:
        return f"{table.name[:3].upper()}{i}"
    if name == "customer_id":
        return f"C{i % n_customers}"
    optional_null = (not col.required) and i % 7 == 3
    if name == "end_date":  # open on even rows, else 30 days after start_date
        return None if i % 2 == 0 else BASE_DAY + dt.timedelta(days=i % 300 + 30)
    if name == "resolved_at":  # open, same instant as opened_at, or 2 h later
        if i % 3 == 0:
            return None
        return BASE_TS + dt.timedelta(minutes=i) + dt.timedelta(hours=0 if i % 3 == 1 else 2)
    if optional_null:
        return None
    if col.allowed:
        return col.allowed[i % len(col.allowed)]
    if col.sql_type == "DATE":
        return BASE_DAY + dt.timedelta(days=i % 300)
    if col.sql_type == "TIMESTAMP":
        return BASE_TS + dt.timedelta(minutes=i)
    if col.sql_type in ("DOUBLE", "BIGINT"):
        lo = col.min_value if col.min_value is not None else -10
        hi = col.max_value if col.max_value is not None else lo + 1000
        return lo + (i % int(hi - lo + 1))
    return f"{name}_{i % 3}"


def _through_duckdb(pdf: pd.DataFrame, types: dict[str, str]) -> pd.DataFrame:
    con = duckdb.connect()
    try:
        con.register("pdf", pdf)
        cols = ", ".join(f'CAST("{c}" AS {t}) AS "{c}"' for c, t in types.items())
        return con.execute(f"SELECT {cols} FROM pdf").df()
    finally:
        con.close()


def clean_frame(table_name: str, n: int = 60) -> pd.DataFrame:
    table = TABLES[table_name]
    n_customers = max(n // 2, 1)
    data = {c.name: [_value(table, c, i, n_customers) for i in range(n)] for c in table.columns}
    data["_source_file"] = [f"{table.name}.csv"] * n
    data["_row_number"] = list(range(1, n + 1))
    data["_loaded_at"] = [BASE_TS] * n
    assert list(data)[-len(LINEAGE_COLUMNS):] == list(LINEAGE_COLUMNS)
    types = {c.name: c.sql_type for c in table.columns}
    types.update({"_source_file": "VARCHAR", "_row_number": "BIGINT", "_loaded_at": "TIMESTAMP"})
    return _through_duckdb(pd.DataFrame(data), types)


def churn_frame() -> pd.DataFrame:
    rows = [
        # period_start, period_end, start, new, reactivated, churned, end, rate
        ("2024-01-01", "2024-02-01", 0, 10, 0, 0, 10, None),  # no customers at start: rate null
        ("2024-02-01", "2024-03-01", 10, 5, 1, 2, 14, 0.2),
        ("2024-03-01", "2024-04-01", 14, 0, 0, 14, 0, 1.0),
        ("2024-04-01", "2024-05-01", 0, 3, 0, 0, 3, None),
    ]
    cols = ["period_start", "period_end", "customers_start", "customers_new",
            "customers_reactivated", "customers_churned", "customers_end", "churn_rate"]
    types = dict.fromkeys(cols, "BIGINT")
    types.update(period_start="DATE", period_end="DATE", churn_rate="DOUBLE")
    return _through_duckdb(pd.DataFrame(rows, columns=cols), types)


def _suite(table_name: str):
    return raw_table_suite(TABLES[table_name])


# --------------------------------------------------------------------------- clean frames


@pytest.mark.parametrize("table_name", sorted(TABLES))
def test_clean_raw_frame_passes(table_name):
    df = clean_frame(table_name)
    summary = validate_frame(df, _suite(table_name))
    assert summary.failures == []
    assert summary.success is True
    assert summary.suite == f"raw_{table_name}"
    assert summary.evaluated == summary.successful > 0
    assert summary.docs_index is None


def test_clean_frames_really_exercise_the_edge_cases():
    # the passing frames above contain the nulls / equalities the suites must tolerate
    subs = clean_frame("subscriptions")
    assert subs["end_date"].isna().any() and subs["end_date"].notna().any()
    tickets = clean_frame("support_tickets")
    assert (tickets["resolved_at"] == tickets["opened_at"]).any()  # >= allows equality
    assert tickets["resolved_at"].isna().any()
    assert tickets["satisfaction_score"].isna().any()
    orders = clean_frame("orders")
    assert orders["status"].isna().any()  # optional enumeration with nulls


def test_clean_churn_frame_passes():
    summary = validate_frame(churn_frame(), churn_period_suite())
    assert summary.failures == []
    assert summary.success is True
    assert summary.suite == "fct_churn_period"


# --------------------------------------------------------------------------- bad raw frames


def test_duplicated_customer_id_fails_exactly_uniqueness():
    df = clean_frame("customers")
    df.loc[5, "customer_id"] = df.loc[4, "customer_id"]
    dup = df.loc[4, "customer_id"]
    summary = validate_frame(df, _suite("customers"))
    assert summary.success is False
    assert summary.failures == [
        f"expect_column_values_to_be_unique(customer_id): 2 unexpected values, "
        f"e.g. ['{dup}', '{dup}']"
    ]
    assert summary.evaluated - summary.successful == 1


def test_missing_required_column_fails_on_that_column_only():
    df = clean_frame("orders").drop(columns=["amount"])
    summary = validate_frame(df, _suite("orders"))
    assert summary.success is False
    assert summary.failures[0] == "expect_column_to_exist(amount): column is missing"
    # the range check on the absent column cannot run and is reported as an error
    assert summary.failures[1:] == [
        'expect_column_values_to_be_between(amount): error: '
        'The column "amount" in BatchData does not exist.'
    ]


def test_missing_optional_column_is_fine_when_suite_knows_the_columns():
    df = clean_frame("support_tickets").drop(columns=["satisfaction_score"])
    summary = validate_frame(df, raw_table_suite(TABLES["support_tickets"], columns=df.columns))
    assert summary.success is True, summary.failures
    # ...but a suite that expects every contract column reports it
    summary = validate_frame(df, _suite("support_tickets"))
    assert summary.failures == [
        'expect_column_values_to_be_between(satisfaction_score): error: '
        'The column "satisfaction_score" in BatchData does not exist.'
    ]


def test_out_of_range_satisfaction_score_fails():
    df = clean_frame("support_tickets")
    df.loc[10, "satisfaction_score"] = 7.0
    summary = validate_frame(df, _suite("support_tickets"))
    assert summary.failures == [
        "expect_column_values_to_be_between(satisfaction_score): 1 unexpected value, e.g. [7.0]"
    ]


def test_negative_amount_fails():
    df = clean_frame("orders")
    df.loc[[1, 2], "amount"] = -5.0
    summary = validate_frame(df, _suite("orders"))
    assert summary.failures == [
        "expect_column_values_to_be_between(amount): 2 unexpected values, e.g. [-5.0, -5.0]"
    ]


def test_unknown_enumeration_value_fails():
    df = clean_frame("orders")
    df.loc[0, "status"] = "shipped"
    summary = validate_frame(df, _suite("orders"))
    assert summary.failures == [
        "expect_column_values_to_be_in_set(status): 1 unexpected value, e.g. ['shipped']"
    ]


def test_null_customer_id_on_child_table_fails():
    df = clean_frame("loyalty_events")
    df.loc[[3, 8, 9], "customer_id"] = None
    summary = validate_frame(df, _suite("loyalty_events"))
    assert summary.failures == ["expect_column_values_to_not_be_null(customer_id): 3 null values"]


@pytest.mark.parametrize("offset_days", [-1, 0])  # end_date is exclusive: equal is also wrong
def test_end_date_not_after_start_date_fails(offset_days):
    df = clean_frame("subscriptions")
    row = df.index[df["end_date"].notna()][0]
    df.loc[row, "end_date"] = df.loc[row, "start_date"] + pd.Timedelta(days=offset_days)
    start = df.loc[row, "start_date"].date().isoformat()
    end = df.loc[row, "end_date"].date().isoformat()
    summary = validate_frame(df, _suite("subscriptions"))
    assert summary.failures == [
        "expect_column_pair_values_a_to_be_greater_than_b(end_date, start_date): "
        f"1 unexpected value, e.g. [('{end}', '{start}')]"
    ]


def test_resolved_before_opened_fails():
    df = clean_frame("support_tickets")
    row = df.index[df["resolved_at"].notna()][0]
    df.loc[row, "resolved_at"] = df.loc[row, "opened_at"] - pd.Timedelta(minutes=1)
    summary = validate_frame(df, _suite("support_tickets"))
    assert len(summary.failures) == 1
    assert summary.failures[0].startswith(
        "expect_column_pair_values_a_to_be_greater_than_b(resolved_at, opened_at): 1 unexpected value"
    )


# --------------------------------------------------------------------------- bad churn frames


def test_churn_rate_above_one_fails():
    df = churn_frame()
    df.loc[1, "churn_rate"] = 1.5
    summary = validate_frame(df, churn_period_suite())
    assert summary.failures == [
        "expect_column_values_to_be_between(churn_rate): 1 unexpected value, e.g. [1.5]"
    ]


def test_null_churn_rate_only_allowed_without_customers_at_start():
    df = churn_frame()
    df.loc[1, "churn_rate"] = None  # customers_start = 10
    summary = validate_frame(df, churn_period_suite())
    assert summary.failures == [
        "expect_column_values_to_not_be_null(churn_rate where customers_start > 0): 1 null value"
    ]


def test_negative_count_duplicate_period_and_bad_period_end():
    df = churn_frame()
    df.loc[2, "customers_churned"] = -1
    df.loc[3, "period_start"] = df.loc[2, "period_start"]
    df.loc[0, "period_end"] = df.loc[0, "period_start"]
    summary = validate_frame(df, churn_period_suite())
    assert summary.failures == [
        "expect_column_values_to_be_unique(period_start): 2 unexpected values, "
        "e.g. ['2024-03-01', '2024-03-01']",
        "expect_column_pair_values_a_to_be_greater_than_b(period_end, period_start): "
        "1 unexpected value, e.g. [('2024-01-01', '2024-01-01')]",
        "expect_column_values_to_be_between(customers_churned): 1 unexpected value, e.g. [-1]",
    ]


def test_empty_churn_table_fails_row_count():
    summary = validate_frame(churn_frame().iloc[:0], churn_period_suite())
    assert summary.failures == ["expect_table_row_count_to_be_between: observed 0, expected >= 1"]


# --------------------------------------------------------------------------- repeated runs


def test_two_validations_in_a_row_in_one_process():
    suite = _suite("orders")
    good = clean_frame("orders")
    bad = good.copy()
    bad.loc[0, "status"] = "lost"

    first = validate_frame(good, suite)
    second = validate_frame(bad, suite)  # same suite object, same asset
    third = validate_frame(good, _suite("orders"))  # rebuilt suite, same name
    fourth = validate_frame(bad, _suite("orders"), batch_name="orders_again")  # new asset
    assert [s.success for s in (first, second, third, fourth)] == [True, False, True, False]
    assert second.failures == fourth.failures == [
        "expect_column_values_to_be_in_set(status): 1 unexpected value, e.g. ['lost']"
    ]
    # results are not left piling up in the process-wide context
    assert runner.get_context().validation_results_store.list_keys() == []


def test_changed_suite_with_same_name_replaces_the_old_one():
    df = clean_frame("orders").drop(columns=["status"])
    full = validate_frame(df, _suite("orders"))
    assert any("(status)" in f for f in full.failures)
    trimmed = validate_frame(df, raw_table_suite(TABLES["orders"], columns=df.columns))
    assert trimmed.success is True and trimmed.evaluated == full.evaluated - 1


# --------------------------------------------------------------------------- data docs


def test_data_docs_written_to_the_given_directory(tmp_path):
    docs = tmp_path / "gx_docs"
    ok = validate_frame(clean_frame("customers"), _suite("customers"), docs_dir=docs)
    bad_df = churn_frame()
    bad_df.loc[1, "churn_rate"] = 1.5
    bad = validate_frame(bad_df, churn_period_suite(), docs_dir=docs)

    index = docs / "index.html"
    assert ok.docs_index == bad.docs_index == str(index)
    assert index.is_file()
    html = index.read_text()
    assert "raw_customers" in html and "fct_churn_period" in html
    pages = sorted(p.relative_to(docs).parts[:2] for p in (docs / "validations").rglob("*.html"))
    assert pages == [("validations", "fct_churn_period"), ("validations", "raw_customers")]
    assert (docs / "expectations" / "raw_customers.html").is_file()


def test_data_docs_keep_pages_from_an_earlier_process(tmp_path, monkeypatch):
    docs = tmp_path / "docs"
    validate_frame(clean_frame("orders"), _suite("orders"), docs_dir=docs)
    # simulate a new process: fresh context, no registered sites
    monkeypatch.setattr(runner, "_CONTEXT", None)
    monkeypatch.setattr(runner, "_DOCS_SITES", {})
    validate_frame(clean_frame("interactions"), _suite("interactions"), docs_dir=docs)
    html = (docs / "index.html").read_text()
    assert "raw_orders" in html and "raw_interactions" in html
    assert len(list((docs / "validations").rglob("*.html"))) == 2


def test_data_docs_history_is_pruned(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "DOCS_HISTORY", 2)
    docs = tmp_path / "docs"
    df, suite = clean_frame("orders", n=10), _suite("orders")
    for _ in range(3):
        validate_frame(df, suite, docs_dir=docs)
    assert len(list((docs / "validations").rglob("*.html"))) == 2
    assert len(list((docs / runner.STORE_SUBDIR / "validations").rglob("*.json"))) == 2
    assert len(re.findall(r"validations/raw_orders/[^\"']+\.html", (docs / "index.html").read_text())) >= 2


# --------------------------------------------------------------------------- summary


def test_summary_is_plain_data_and_renders_markdown():
    df = clean_frame("customers")
    df.loc[1, "customer_id"] = df.loc[0, "customer_id"]
    summary = validate_frame(df, _suite("customers"))
    assert isinstance(summary, ValidationSummary)
    assert summary.evaluated == summary.successful + len(summary.failures)
    assert summary.statistics["rows"] == len(df)
    assert summary.statistics["unsuccessful_expectations"] == 1
    json.dumps(summary.statistics)
    md = summary.to_markdown()
    assert "| `raw_customers` | FAILED |" in md
    assert "expect_column_values_to_be_unique(customer_id): 2 unexpected values" in md
    ok = validate_frame(clean_frame("customers"), _suite("customers")).to_markdown()
    assert "PASSED" in ok and "failed expectation" not in ok


# --------------------------------------------------------------------------- speed


def test_70k_rows_validate_in_a_few_seconds():
    n = 70_000
    tickets = TABLES["support_tickets"]
    opened = pd.Timestamp("2023-01-01") + pd.to_timedelta(pd.RangeIndex(n), unit="min")
    df = pd.DataFrame({
        "ticket_id": [f"T{i}" for i in range(n)],
        "customer_id": [f"C{i % 20_000}" for i in range(n)],
        "opened_at": opened,
        "resolved_at": opened + pd.Timedelta(hours=3),
        "priority": "low",
        "category": "billing",
        "satisfaction_score": [float(1 + i % 5) for i in range(n)],
    })
    suite = raw_table_suite(tickets)
    validate_frame(df.head(100), suite)  # warm the context / metric code paths
    start = time.perf_counter()
    summary = validate_frame(df, suite)
    clean_seconds = time.perf_counter() - start
    assert summary.success, summary.failures

    df.loc[: 999, "satisfaction_score"] = 9.0
    df.loc[: 499, "ticket_id"] = "T0"
    start = time.perf_counter()
    bad = validate_frame(df, suite)
    bad_seconds = time.perf_counter() - start
    assert bad.failures == [
        "expect_column_values_to_be_unique(ticket_id): 500 unexpected values, "
        "e.g. ['T0', 'T0', 'T0']",
        "expect_column_values_to_be_between(satisfaction_score): 1000 unexpected values, "
        "e.g. [9.0, 9.0, 9.0]",
    ]
    print(f"70k rows: clean {clean_seconds:.2f}s, with failures {bad_seconds:.2f}s")
    assert clean_seconds < 5 and bad_seconds < 5
