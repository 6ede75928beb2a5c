"""The bad-input corpus (tests/data/bad_inputs/<case>/): every case ends in one clear line or in
quarantine rows (or, where the input is fine after all, in exactly the expected raw rows).

Expected values are written out by hand from the small files, not computed by the loader.
"""

from __future__ import annotations

import json
import os
import shutil
import time
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest

from orchestration.checks.quarantine_checks import evaluate
from orchestration.ingest.loader import IngestError, check_landing, load_table

CORPUS = Path(__file__).resolve().parents[1] / "data" / "bad_inputs"
RUN_TS = datetime(2024, 6, 1, 12, 0, 0)


@dataclass(frozen=True)
class Error:
    table: str
    file: str  # the file the message must name (relative to the landing folder)
    fragments: tuple[str, ...]
    via_check_landing: bool = False


@dataclass(frozen=True)
class Quarantine:
    table: str
    loaded: int
    # (file, row number, reason, column in the raw record, raw value)
    rows: tuple[tuple[str, int, str, str, object], ...]


@dataclass(frozen=True)
class Accepted:
    table: str
    sql: str
    expected: list
    duplicates: tuple[tuple, ...] = field(default=())  # (file, row, key, kind, kept file, kept row)


@dataclass(frozen=True)
class CheckFails:
    table: str
    fragments: tuple[str, ...]


DD = "only ISO 8601 (YYYY-MM-DD) is accepted"

CASES: dict[str, object] = {
    # ---- the whole file is refused: one line naming file, column / line and fix
    "missing_required_column": Error("orders", "orders.csv", ("required column 'amount' is missing", "orders contract")),
    "renamed_column": Error("customers", "customers.csv", ("'customerid' looks like it", "rename 'customerid' to 'customer_id'")),
    "unsafe_column_name": Error("customers", "customers.csv", ("'favourite genre' is not allowed", "e.g. to 'favourite_genre'")),
    "sql_injection_column_name": Error("customers", "customers.csv",
                                       ("'x\"; drop table raw.customers; --' is not allowed", "rename it")),
    "duplicate_column_names": Error("customers", "customers.csv", ("duplicate column name(s) ['country']", "rename them")),
    "latin1_encoding": Error("customers", "customers.csv", ("byte 0xfc on line 3 is not UTF-8", "save the file as UTF-8",
                                                            "iconv -f latin1")),
    "utf16_encoding": Error("customers", "customers.csv", ("UTF-16", "iconv -f utf-16 -t utf-8")),
    "ragged_rows": Error("orders", "orders.csv", ("line 3 does not match the header", "Found: 6",
                                                   "give every row 5 fields")),
    "empty_file": Error("customers", "customers.csv", ("the file is empty (0 bytes)", "deliver it again")),
    "header_only_customers": Error("customers", "customers.csv", ("header but no data rows",)),
    "parquet_different_schema": Error("orders", "orders.parquet", ("required column 'order_id' is missing",
                                                                   "found: id, customer, date, value")),
    "corrupt_parquet": Error("orders", "orders.parquet", ("cannot be read as Parquet", "deliver the file again")),
    "unsupported_file_type": Error("orders", "orders/2024-06.xlsx", ("unsupported file type '.xlsx'", "CSV (UTF-8) or Parquet")),
    "misnamed_table_file": Error("orders", "order.csv", ("'order.csv' is not read", "name it orders.csv"), via_check_landing=True),
    # ---- bad rows go to raw.quarantine with file, row, reason and the raw record
    "wrong_type_number": Quarantine("orders", 1, (("orders.csv", 2, "amount: 'ten' is not a number", "amount", "ten"),)),
    "decimal_comma": Quarantine("orders", 1, (
        ("orders.csv", 2, "amount: '12,50' is not a number (use . as the decimal separator, no thousands separators)",
         "amount", "12,50"),)),
    "wrong_type_integer": Quarantine("customers", 1, (
        ("customers.csv", 2, "birth_year: '1985.5' is not a whole number", "birth_year", "1985.5"),
        ("customers.csv", 3, "birth_year: 'nineteen' is not a whole number", "birth_year", "nineteen"))),
    "unparsable_date": Quarantine("orders", 1, (
        ("orders.csv", 2, f"order_date: 'yesterday' is not a date; {DD}", "order_date", "yesterday"),)),
    "mixed_date_formats": Quarantine("orders", 1, (
        ("orders.csv", 2, f"order_date: '31.01.2024' is DD.MM.YYYY; {DD}", "order_date", "31.01.2024"),
        ("orders.csv", 3, f"order_date: '01/31/2024' is MM/DD/YYYY; {DD}", "order_date", "01/31/2024"),
        ("orders.csv", 4, f"order_date: '03/04/2024' is MM/DD/YYYY or DD/MM/YYYY (ambiguous); {DD}", "order_date", "03/04/2024"),
        ("orders.csv", 5, f"order_date: '20240131' is YYYYMMDD; {DD}", "order_date", "20240131"),
        ("orders.csv", 6, f"order_date: '2024/01/31' is YYYY/MM/DD; {DD}", "order_date", "2024/01/31"),
        ("orders.csv", 7, f"order_date: '2024-1-31' is YYYY-M-D (not zero-padded); {DD}", "order_date", "2024-1-31"))),
    "invalid_calendar_date": Quarantine("orders", 1, (
        ("orders.csv", 2, "order_date: '2023-02-29' is not a valid calendar date", "order_date", "2023-02-29"),
        ("orders.csv", 3, "order_date: '2024-13-01' is not a valid calendar date", "order_date", "2024-13-01"))),
    "null_primary_key": Quarantine("orders", 1, (
        ("orders.csv", 2, "order_id: primary key is missing", "amount", "2"),
        ("orders.csv", 3, "order_id: primary key is missing", "order_id", "   "))),
    "null_customer_key": Quarantine("customers", 1, (
        ("customers.csv", 2, "customer_id: primary key is missing", "country", "DE"),)),
    "missing_required_value": Quarantine("subscriptions", 1, (
        ("subscriptions.csv", 2, "mrr: required value is missing", "subscription_id", "s2"),
        ("subscriptions.csv", 3, "start_date: required value is missing", "subscription_id", "s3"))),
    "orphan_foreign_key": Quarantine("orders", 1, (
        ("orders.csv", 2, "customer_id: 'C9' is not in customers", "customer_id", "C9"),)),
    "orphan_of_quarantined_customer": Quarantine("orders", 1, (
        ("orders.csv", 2, "customer_id: 'C2' was quarantined in customers", "customer_id", "C2"),)),
    "negative_amount": Quarantine("orders", 1, (
        ("orders.csv", 2, "amount: -5.0 is below the minimum 0", "amount", "-5"),)),
    "negative_mrr": Quarantine("subscriptions", 1, (
        ("subscriptions.csv", 2, "mrr: -10.0 is below the minimum 0", "mrr", "-10"),)),
    "mrr_1e12": Quarantine("subscriptions", 1, (
        ("subscriptions.csv", 2, "mrr: 1000000000000.0 is above the maximum 1e+07 (CHURN_MAX_MONEY_VALUE; wrong unit, "
         "e.g. cents?)", "mrr", "1e12"),)),
    "non_finite_number": Quarantine("orders", 1, (
        ("orders.csv", 2, "amount: 'NaN' is not a finite number", "amount", "NaN"),
        ("orders.csv", 3, "amount: 'inf' is not a finite number", "amount", "inf"))),
    # the run date is 2024-06-01 and one day of tolerance is allowed (time zones)
    "future_date": Quarantine("orders", 1, (
        ("orders.csv", 2, "order_date: 2024-06-03 is after the run date 2024-06-01", "order_date", "2024-06-03"),
        ("orders.csv", 3, "order_date: 2030-01-01 is after the run date 2024-06-01", "order_date", "2030-01-01"))),
    "end_before_start": Quarantine("subscriptions", 1, (
        ("subscriptions.csv", 2, "end_date: 2024-01-01 is not after start_date 2024-02-01 (end_date is exclusive: the "
         "first day without service)", "end_date", "2024-01-01"),
        ("subscriptions.csv", 3, "end_date: 2024-03-01 is not after start_date 2024-03-01 (end_date is exclusive: the "
         "first day without service)", "end_date", "2024-03-01"))),
    "resolved_before_opened": Quarantine("support_tickets", 1, (
        ("support_tickets.csv", 2, "resolved_at: 2024-01-04 09:00:00 is before opened_at 2024-01-05 10:00:00",
         "resolved_at", "2024-01-04 09:00:00"),)),
    "out_of_range_score": Quarantine("support_tickets", 1, (
        ("support_tickets.csv", 2, "satisfaction_score: 7.0 is above the maximum 5", "satisfaction_score", "7"),
        ("support_tickets.csv", 3, "satisfaction_score: 0.0 is below the minimum 1", "satisfaction_score", "0"))),
    "out_of_range_birth_year": Quarantine("customers", 1, (
        ("customers.csv", 2, "birth_year: 1850 is below the minimum 1900", "birth_year", "1850"),)),
    "unknown_enum_value": Quarantine("orders", 1, (
        ("orders.csv", 2, "status: 'shipped' is not one of completed, refunded, cancelled", "status", "shipped"),)),
    "parquet_wrong_types": Quarantine("orders", 0, (
        ("orders.parquet", 1, f"order_date: '20240105' is YYYYMMDD; {DD}", "order_date", 20240105),
        ("orders.parquet", 2, f"order_date: '20240106' is YYYYMMDD; {DD}; amount: 'abc' is not a number", "amount", "abc"),
        ("orders.parquet", 3, f"order_date: '20240107' is YYYYMMDD; {DD}", "order_date", 20240107))),
    # ---- fine after all: loaded as expected
    "extra_column": Accepted("customers", "select customer_id, country, favourite_genre from raw.customers order by 1",
                             [("C1", "US", "jazz"), ("C2", "DE", None)]),
    "utf8_bom": Accepted("customers", "select customer_id, country from raw.customers order by 1", [("C1", "US"), ("C2", "DE")]),
    "semicolon_delimiter": Accepted("customers", "select customer_id, signup_date, country from raw.customers order by 1",
                                    [("C1", date(2024, 1, 5), "US"), ("C2", date(2024, 2, 10), "DE")]),
    "tab_delimited_folder_part": Accepted("customers", "select customer_id, country from raw.customers", [("C1", "US")]),
    "quoted_newlines": Accepted("customers", "select customer_id, note, _row_number from raw.customers order by 1",
                                [("C1", "first line\nsecond line, with comma", 1), ("C2", 'he said "hi"', 2)]),
    "crlf_line_endings": Accepted("customers", "select customer_id, country from raw.customers order by 1",
                                  [("C1", "US"), ("C2", "DE")]),
    "header_whitespace_and_case": Accepted("customers", "select customer_id, country from raw.customers", [("C1", "US")]),
    "header_only_optional_table": Accepted("support_tickets", "select count(*) from raw.support_tickets", [(0,)]),
    "enum_case_and_spaces": Accepted("orders", "select order_id, status from raw.orders order by 1",
                                     [("o1", "completed"), ("o2", "refunded"), ("o3", None)]),
    "timestamp_with_offset": Accepted(
        "interactions", "select interaction_id, occurred_at from raw.interactions order by 1",
        [("i1", datetime(2024, 1, 1, 8)), ("i2", datetime(2024, 1, 1, 10)), ("i3", datetime(2024, 1, 1, 10)),
         ("i4", datetime(2024, 1, 1))]),
    "future_end_date_allowed": Accepted("subscriptions", "select subscription_id, end_date from raw.subscriptions",
                                        [("s1", date(2024, 7, 1))]),
    "in_flight_files_ignored": Accepted("orders", "select order_id from raw.orders", [("o1",)]),
    "parquet_parts_different_schemas": Accepted(
        "orders", "select order_id, order_date, amount, status, channel from raw.orders order by 1",
        [("o1", date(2024, 1, 5), 10.0, "completed", None), ("o2", date(2024, 1, 6), 7.25, None, "web")]),
    # ---- duplicates: identical rows keep one copy, versions resolve to the latest
    "exact_duplicate_rows": Accepted(
        "orders", "select order_id, amount, _row_number from raw.orders order by 1", [("o1", 10.0, 3), ("o2", 5.0, 2)],
        duplicates=(("orders.csv", 1, "o1", "exact_duplicate", "orders.csv", 3),)),
    "duplicate_key_ordered_by_updated_at": Accepted(
        "customers", "select customer_id, country from raw.customers order by 1", [("C1", "US"), ("C2", "DE")],
        duplicates=(("customers.csv", 3, "C1", "older_version", "customers.csv", 1),)),
    "same_file_twice_new_name": Accepted(
        # "2024-06-01 (copy).csv" sorts first, so it is loaded first; the later file's identical rows are kept
        "orders", "select order_id, _source_file like '%2024-06-01.csv' from raw.orders order by 1",
        [("o1", True), ("o2", True)],
        duplicates=(("orders/2024-06-01 (copy).csv", 1, "o1", "exact_duplicate", "orders/2024-06-01.csv", 1),
                    ("orders/2024-06-01 (copy).csv", 2, "o2", "exact_duplicate", "orders/2024-06-01.csv", 2))),
    # ---- loaded, but a blocking check stops the run
    "conflicting_duplicate_keys": CheckFails("customers", (
        "raw.customers: 1 customer_id value(s) have conflicting versions in one file with the same updated_at",
        "e.g. 'C1' in", "customers.csv rows 1, 3", "keep one row per customer_id")),
    "quarantine_share_over_threshold": CheckFails("orders", (
        "raw.orders: 2 of 20 rows (10.0%) quarantined, above the 5% limit (CHURN_QUARANTINE_MAX_SHARE)",
        "by column: amount (1), order_date (1)")),
}
# cases with two deliveries (v1/, v2/) have their own tests below
MULTI_STEP = ("same_file_twice_same_name", "corrected_redelivery_same_name", "corrected_redelivery_new_file", "file_removed")


def land(tmp_path: Path, case: str, sub: str | None = None) -> Path:
    landing = tmp_path / "landing"
    if landing.exists():
        shutil.rmtree(landing)
    shutil.copytree(CORPUS / case / sub if sub else CORPUS / case, landing)
    return landing


def load(con, landing: Path, table: str):
    if table != "customers" and any(landing.glob("customers*")):
        load_table(con, landing, "customers", run_ts=RUN_TS)
    return load_table(con, landing, table, run_ts=RUN_TS)


@pytest.fixture
def con():
    c = duckdb.connect()
    yield c
    c.close()


def test_the_corpus_has_at_least_30_kinds_and_every_case_is_tested():
    cases = sorted(p.name for p in CORPUS.iterdir() if p.is_dir())
    assert len(cases) >= 30
    assert sorted([*CASES, *MULTI_STEP]) == cases


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_input(case, tmp_path, con):
    expect = CASES[case]
    landing = land(tmp_path, case)
    if isinstance(expect, Error):
        with pytest.raises(IngestError) as exc:
            if expect.via_check_landing:
                check_landing(landing)
            else:
                load(con, landing, expect.table)
        message = str(exc.value)
        assert "\n" not in message and "Traceback" not in message
        assert message.startswith(str(landing / expect.file) + ":"), message
        for fragment in expect.fragments:
            assert fragment in message, message
        if not expect.via_check_landing and expect.table != "customers":
            # nothing of the refused table was written
            assert con.execute("select count(*) from information_schema.tables where table_name = ?",
                               [expect.table]).fetchone()[0] == 0
        return

    result = load(con, landing, expect.table)
    if isinstance(expect, Quarantine):
        got = con.execute("select source_file, row_number, reason, raw_record from raw.quarantine "
                          "where table_name = ? order by row_number", [expect.table]).fetchall()
        assert [(Path(f).name, r, reason) for f, r, reason, _ in got] == [(f, r, reason) for f, r, reason, _, _ in expect.rows]
        for (_, _, _, record), (_, _, _, column, value) in zip(got, expect.rows):
            assert json.loads(record)[column] == value
        assert (result.rows_loaded, result.rows_quarantined) == (expect.loaded, len(expect.rows))
        assert con.execute(f"select count(*) from raw.{expect.table}").fetchone()[0] == expect.loaded
        assert sum(result.quarantine_reasons.values()) >= len(expect.rows)
    elif isinstance(expect, Accepted):
        assert con.execute(expect.sql).fetchall() == expect.expected
        assert result.rows_quarantined == 0
        dupes = con.execute("select source_file, row_number, key_value, kind, kept_file, kept_row from raw.duplicates "
                            "where table_name = ? order by 1, 2", [expect.table]).fetchall()
        rel = [(str(Path(f).relative_to(landing)), r, k, kind, str(Path(kf).relative_to(landing)), kr)
               for f, r, k, kind, kf, kr in dupes]
        assert rel == list(expect.duplicates)
        assert result.rows_duplicate == len(expect.duplicates)
    elif isinstance(expect, CheckFails):
        passed, description, meta = evaluate(con, expect.table, 0.05)
        assert not passed
        assert "\n" not in description
        for fragment in expect.fragments:
            assert fragment in description, description
    else:  # pragma: no cover
        raise AssertionError(case)


def _raw(con, table: str) -> list[tuple]:
    return con.execute(f"select * from raw.{table} order by all").fetchall()


def test_same_file_delivered_twice_under_the_same_name_changes_nothing(tmp_path, con):
    landing = land(tmp_path, "same_file_twice_same_name")
    first = load(con, landing, "orders")
    before = {t: _raw(con, t) for t in ("orders", "landing_manifest", "landing_state", "quarantine", "duplicates")}
    # the same bytes copied in again: new mtime, same checksum
    time.sleep(0.01)
    shutil.copy(CORPUS / "same_file_twice_same_name" / "orders.csv", landing / "orders.csv")
    os.utime(landing / "orders.csv")
    second = load(con, landing, "orders")
    assert (first.status, second.status) == ("loaded", "unchanged")
    assert {t: _raw(con, t) for t in before} == before
    assert con.execute("select count(*), max(version) from raw.landing_manifest where table_name = 'orders'").fetchone() == (1, 1)


def test_corrected_redelivery_under_the_same_name_is_a_new_version(tmp_path, con):
    landing = land(tmp_path, "corrected_redelivery_same_name", "v1")
    load(con, landing, "orders")
    v1 = con.execute("select sha256 from raw.landing_manifest where table_name = 'orders'").fetchone()[0]
    landing = land(tmp_path, "corrected_redelivery_same_name", "v2")
    result = load(con, landing, "orders")
    assert result.changed_files == [str(landing / "orders.csv")] and result.new_files == []
    assert con.execute("select order_id, amount from raw.orders order by 1").fetchall() == [
        ("o1", 10.0), ("o2", 50.0), ("o3", 1.0)]
    versions = con.execute("select version, status, sha256 = ?, rows_read from raw.landing_manifest "
                           "where table_name = 'orders' order by version", [v1]).fetchall()
    assert versions == [(1, "replaced", True, 2), (2, "current", False, 3)]


def test_corrected_redelivery_in_a_new_file_wins_by_load_order(tmp_path, con):
    landing = land(tmp_path, "corrected_redelivery_new_file", "v1")
    load(con, landing, "orders")
    landing = land(tmp_path, "corrected_redelivery_new_file", "v2")
    result = load(con, landing, "orders")
    # the correction's name sorts BEFORE the first file, but it was delivered later: it wins
    assert result.new_files == [str(landing / "orders" / "2024-05-31-correction.csv")]
    assert con.execute("select order_id, status, _source_file like '%correction.csv' from raw.orders order by 1").fetchall() == [
        ("o1", None, False), ("o2", "refunded", True)]
    assert con.execute("select row_number, key_value, kind, kept_file like '%correction.csv' from raw.duplicates").fetchall() == [
        (2, "o2", "older_version", True)]
    # from scratch (no history) the same files load in name order, so the first file's o2 would win:
    # load order is delivery order, recorded in the manifest
    fresh = duckdb.connect()
    load(fresh, landing, "orders")
    assert fresh.execute("select status from raw.orders where order_id = 'o2'").fetchone() == (None,)
    fresh.close()


def test_removed_file_takes_its_rows_with_it(tmp_path, con):
    landing = land(tmp_path, "file_removed", "v1")
    assert load(con, landing, "orders").rows_loaded == 2
    landing = land(tmp_path, "file_removed", "v2")
    result = load(con, landing, "orders")
    assert result.removed_files == [str(landing / "orders" / "part-2.csv")]
    assert con.execute("select order_id from raw.orders").fetchall() == [("o1",)]
    assert con.execute("select file_path like '%part-2.csv', status from raw.landing_manifest "
                       "where table_name = 'orders' order by 1").fetchall() == [(False, "current"), (True, "removed")]


def test_new_files_in_a_table_folder_are_picked_up_on_the_next_load(tmp_path, con):
    landing = land(tmp_path, "file_removed", "v2")
    assert load(con, landing, "orders").rows_loaded == 1
    shutil.copy(CORPUS / "file_removed" / "v1" / "orders" / "part-2.csv", landing / "orders" / "part-2.csv")
    result = load(con, landing, "orders")
    assert result.status == "loaded" and result.new_files == [str(landing / "orders" / "part-2.csv")]
    assert con.execute("select order_id from raw.orders order by 1").fetchall() == [("o1",), ("o2",)]


def test_a_refused_file_leaves_the_previous_load_intact(tmp_path, con):
    landing = land(tmp_path, "same_file_twice_same_name")
    load(con, landing, "orders")
    before = {t: _raw(con, t) for t in ("orders", "landing_manifest", "quarantine")}
    (landing / "orders.csv").write_text("order_id,customer_id,order_date\no9,C1,2024-01-01\n")
    with pytest.raises(IngestError, match="required column 'amount'"):
        load_table(con, landing, "orders", run_ts=RUN_TS)
    assert {t: _raw(con, t) for t in before} == before
