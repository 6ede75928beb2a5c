"""The landing loader: contract typing, quarantine with reasons, clear one-line errors."""

from __future__ import annotations

from datetime import date, datetime
from pathlib import Path

import duckdb
import pytest

from orchestration.ingest.loader import IngestError, check_landing, default_as_of, load_table

RUN_TS = datetime(2024, 6, 1, 12, 0, 0)


def _write(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_text(text)
    return path


@pytest.fixture
def con():
    c = duckdb.connect()
    yield c
    c.close()


def test_types_lineage_and_extra_columns(tmp_path, con):
    _write(tmp_path, "customers.csv", "customer_id,signup_date,country,favourite_genre\nA,2024-01-05,US,jazz\nB,,DE,\n")
    res = load_table(con, tmp_path, "customers", run_ts=RUN_TS)
    assert (res.rows_loaded, res.rows_quarantined, res.extra_columns) == (2, 0, ["favourite_genre"])
    rows = con.execute("select customer_id, signup_date, country, gender, favourite_genre, _row_number "
                       "from raw.customers order by 1").fetchall()
    assert rows == [("A", date(2024, 1, 5), "US", None, "jazz", 1), ("B", None, "DE", None, None, 2)]
    types = dict(con.execute("select column_name, data_type from information_schema.columns "
                             "where table_schema = 'raw' and table_name = 'customers'").fetchall())
    assert types["signup_date"] == "DATE" and types["birth_year"] == "BIGINT" and types["updated_at"] == "TIMESTAMP"


def test_unparsable_and_future_values_are_quarantined_with_reasons(tmp_path, con):
    _write(tmp_path, "orders.csv",
           "order_id,customer_id,order_date,amount\n"
           "o1,A,2024-01-05,10.5\n"
           "o2,A,31.01.2024,3\n"          # unparsable date
           "o3,B,2024-02-01,ten\n"        # unparsable amount
           "o4,B,2030-01-01,4\n")         # after the run date
    res = load_table(con, tmp_path, "orders", run_ts=RUN_TS)
    assert (res.rows_loaded, res.rows_quarantined) == (1, 3)
    q = con.execute("select row_number, reason from raw.quarantine where table_name = 'orders' order by 1").fetchall()
    assert q == [
        (2, "order_date: '31.01.2024' is DD.MM.YYYY; only ISO 8601 (YYYY-MM-DD) is accepted"),
        (3, "amount: 'ten' is not a number"),
        (4, "order_date: 2030-01-01 is after the run date 2024-06-01"),
    ]
    assert con.execute("select order_id from raw.orders").fetchall() == [("o1",)]
    # a reload replaces the quarantine rows of that table instead of piling them up
    load_table(con, tmp_path, "orders", run_ts=RUN_TS)
    assert con.execute("select count(*) from raw.quarantine").fetchone()[0] == 3


def test_missing_required_column_is_one_clear_line(tmp_path, con):
    path = _write(tmp_path, "subscriptions.csv", "subscription_id,customer_id,start_date,monthly_fee\ns1,A,2024-01-01,9\n")
    with pytest.raises(IngestError) as exc:
        load_table(con, tmp_path, "subscriptions", run_ts=RUN_TS)
    msg = str(exc.value)
    assert "\n" not in msg and str(path) in msg and "'mrr'" in msg and "subscriptions contract" in msg


def test_missing_optional_table_is_empty_and_typed(tmp_path, con):
    res = load_table(con, tmp_path, "support_tickets", run_ts=RUN_TS)
    assert res.present is False and res.rows_loaded == 0
    types = dict(con.execute("select column_name, data_type from information_schema.columns "
                             "where table_schema = 'raw' and table_name = 'support_tickets'").fetchall())
    assert types["opened_at"] == "TIMESTAMP" and types["satisfaction_score"] == "DOUBLE"


def test_an_absent_table_stays_unchanged_until_a_file_arrives_or_leaves(tmp_path, con):
    """An absent optional table is not rebuilt every run: a new full_built_at each run made dbt
    recompute every period on every run of a source without that table (CDNOW, Telco)."""
    def state():
        return con.execute("select full_built_at, mode from raw.landing_state where table_name = 'support_tickets'").fetchone()

    first = load_table(con, tmp_path, "support_tickets", run_ts=RUN_TS)
    assert (first.status, first.load_mode) == ("absent", "full")
    built = state()[0]
    # next day, nothing delivered: unchanged, the recorded build time stays
    again = load_table(con, tmp_path, "support_tickets", run_ts=datetime(2024, 6, 2, 12))
    assert (again.status, again.load_mode, again.present, again.rows_loaded) == ("absent", "unchanged", False, 0)
    assert state()[0] == built
    # a file arrives: its rows are loaded
    _write(tmp_path, "support_tickets.csv", "ticket_id,customer_id,opened_at\nt1,A,2024-05-01T10:00:00\nt2,B,2024-05-02T11:00:00\n")
    arrived = load_table(con, tmp_path, "support_tickets", run_ts=datetime(2024, 6, 3, 12))
    assert arrived.present and arrived.rows_loaded == 2
    assert con.execute("select count(*) from raw.support_tickets").fetchone()[0] == 2
    # and leaves again: the table is emptied, by a full rebuild
    (tmp_path / "support_tickets.csv").unlink()
    gone = load_table(con, tmp_path, "support_tickets", run_ts=datetime(2024, 6, 4, 12))
    assert (gone.status, gone.load_mode) == ("absent", "full") and state()[0] == datetime(2024, 6, 4, 12)
    assert con.execute("select count(*) from raw.support_tickets").fetchone()[0] == 0


def test_several_files_in_a_table_folder_are_unioned(tmp_path, con):
    _write(tmp_path / "orders", "part-1.csv", "order_id,customer_id,order_date,amount\no1,A,2024-01-01,1\n")
    _write(tmp_path / "orders", "part-2.csv", "order_id,customer_id,order_date,amount,status\no2,B,2024-01-02,2,refunded\n")
    res = load_table(con, tmp_path, "orders", run_ts=RUN_TS)
    assert res.rows_loaded == 2
    assert con.execute("select order_id, status, _source_file like '%part-2.csv' from raw.orders order by 1").fetchall() == [
        ("o1", None, False), ("o2", "refunded", True)]


def test_landing_needs_customers_and_an_activity_table(tmp_path):
    with pytest.raises(IngestError, match="customers is required"):
        check_landing(tmp_path)
    _write(tmp_path, "customers.csv", "customer_id\nA\n")
    with pytest.raises(IngestError, match="subscriptions or orders"):
        check_landing(tmp_path)
    _write(tmp_path, "orders.csv", "order_id,customer_id,order_date,amount\no1,A,2024-01-01,1\n")
    check_landing(tmp_path)


def test_empty_and_header_only_customers_files_fail_clearly(tmp_path, con):
    _write(tmp_path, "customers.csv", "")
    with pytest.raises(IngestError, match="customers.csv: the file is empty"):
        load_table(con, tmp_path, "customers", run_ts=RUN_TS)
    _write(tmp_path, "customers.csv", "customer_id,country\n")
    with pytest.raises(IngestError, match="header but no data rows"):
        load_table(con, tmp_path, "customers", run_ts=RUN_TS)


def test_default_as_of_is_the_latest_event_date(tmp_path, con):
    _write(tmp_path, "customers.csv", "customer_id,signup_date,updated_at\nA,2024-01-05,2024-05-30 10:00:00\n")
    _write(tmp_path, "orders.csv", "order_id,customer_id,order_date,amount\no1,A,2024-03-01,1\no2,A,2024-02-01,1\n")
    for t in ("customers", "subscriptions", "orders", "interactions", "support_tickets", "loyalty_events"):
        load_table(con, tmp_path, t, run_ts=RUN_TS)
    # updated_at is bookkeeping, not an event: the as-of date is the last order
    assert default_as_of(con) == date(2024, 3, 1)


def test_unchanged_files_keep_their_recorded_checksum_and_rewritten_ones_are_hashed(tmp_path, con, monkeypatch):
    import os

    from orchestration.ingest import manifest

    _write(tmp_path / "customers", "part-1.csv", "customer_id\nA\nB\n")
    second = _write(tmp_path / "customers", "part-2.csv", "customer_id\nC\n")
    assert load_table(con, tmp_path, "customers", run_ts=RUN_TS).load_mode == "full"
    hashed: list[str] = []
    real = manifest.digest
    monkeypatch.setattr(manifest, "digest", lambda p, **kw: hashed.append(p.name) or real(p, **kw))
    # same size and modification time as recorded: nothing is read again, the table is unchanged
    assert load_table(con, tmp_path, "customers", run_ts=RUN_TS).load_mode == "unchanged"
    assert hashed == []
    # rewritten with the same size (D for C) and a new modification time: hashed, and the change is seen
    second.write_text("customer_id\nD\n")
    st = second.stat()
    os.utime(second, ns=(st.st_atime_ns, st.st_mtime_ns + 1_000_000_000))
    res = load_table(con, tmp_path, "customers", run_ts=RUN_TS)
    assert hashed == ["part-2.csv"] and res.load_mode == "full"
    assert [r[0] for r in con.execute("select customer_id from raw.customers order by 1").fetchall()] == ["A", "B", "D"]
    recorded = con.execute("select sha256 from raw.landing_manifest where file_path = ? and status = 'current'",
                           [str(second)]).fetchone()[0]
    assert recorded == real(second).sha256


def test_conflicting_keys_are_counted_at_a_full_load_and_added_to_by_appends(tmp_path, con):
    from orchestration.ingest.loader import count_conflicting_keys

    # two versions of o1 in one file with nothing to order them: a conflict that is kept (and reported)
    _write(tmp_path / "customers", "part-1.csv", "customer_id\nA\n")
    _write(tmp_path / "orders", "part-1.csv",
           "order_id,customer_id,order_date,amount\no1,A,2024-01-02,5\no1,A,2024-01-02,6\no2,A,2024-01-03,1\n")
    for t in ("customers", "orders"):
        load_table(con, tmp_path, t, run_ts=RUN_TS)
    assert load_table(con, tmp_path, "orders", run_ts=RUN_TS).conflicting_keys == 1
    # a new file with another conflict, on new keys only: appended, and the count is 1 + 1
    _write(tmp_path / "orders", "part-2.csv",
           "order_id,customer_id,order_date,amount\no3,A,2024-01-04,5\no3,A,2024-01-04,7\no4,A,2024-01-05,1\n")
    res = load_table(con, tmp_path, "orders", run_ts=RUN_TS)
    direct = con.execute("select count(*) from (select order_id from raw.orders group by 1 having count(*) > 1)").fetchone()[0]
    assert (res.load_mode, res.conflicting_keys, count_conflicting_keys(con, "orders"), direct) == ("append", 2, 2, 2)
