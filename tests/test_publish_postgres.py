"""The Postgres publish target, against a real PostgreSQL server started by the tests on 127.0.0.1.

The server is Debian's ``postgresql`` (``scripts/ensure_postgres.sh`` installs it for ``make test``);
without it these tests skip with the reason, or fail when CI=true (see tests/postgres_server.py).
Tables come from the small hand-made warehouse of test_publish.py, through the real publish step,
and are compared with the Parquet files of the same version read by pyarrow (a second reader).
"""

from __future__ import annotations

import math
import socket
import threading
import time
import uuid
from datetime import datetime
from pathlib import Path

import duckdb
import pyarrow.parquet as pq
import pytest

from orchestration import publish as pub
from orchestration.assets.publish import PUBLISHED_TABLES
from postgres_server import postgres_server  # noqa: F401 - the session fixture
from test_publish import _materialize, do_publish, make_warehouse, publish_env  # noqa: F401 - publish_env is a fixture

psycopg = pytest.importorskip("psycopg")

# the throwaway server's password: made per run (no secret-looking literal in the repository)
PASSWORD = "pw-" + uuid.uuid4().hex[:12]


# ----------------------------------------------------------------------------- helpers


@pytest.fixture
def pg(postgres_server):  # noqa: F811
    """A URL (with a password: trust auth ignores it, messages must not show it) and a fresh schema name."""
    schema = f"churn_{uuid.uuid4().hex[:8]}"
    url = postgres_server.url(password=PASSWORD)
    yield url, schema
    with psycopg.connect(url, autocommit=True) as conn:
        for (name,) in conn.execute("select nspname from pg_namespace where nspname like %s", [schema + "%"]).fetchall():
            conn.execute(f'drop schema "{name}" cascade')


def _key(row) -> list:
    return [(v is None, "nan" if isinstance(v, float) and math.isnan(v) else repr(v)) for v in row]


def _norm(rows) -> list[tuple]:
    out = [tuple("NaN" if isinstance(v, float) and math.isnan(v) else v for v in r) for r in rows]
    return sorted(out, key=_key)


def parquet_rows(path: Path) -> tuple[list[str], list[tuple]]:
    table = pq.read_table(path)
    return table.column_names, _norm(tuple(r[c] for c in table.column_names) for r in table.to_pylist())


def pg_rows(conn, schema: str, table: str) -> tuple[list[str], list[tuple]]:
    cur = conn.execute(f'select * from "{schema}"."{table}"')
    return [d.name for d in cur.description], _norm(cur.fetchall())


def read_set(conn, schema: str) -> dict:
    """Every table of the live schema, plus publish_info, as sorted rows."""
    names = [r[0] for r in conn.execute(
        "select table_name from information_schema.tables where table_schema = %s order by 1", [schema]).fetchall()]
    return {n: pg_rows(conn, schema, n) for n in names}


def schemas(url: str, prefix: str) -> list[str]:
    with psycopg.connect(url) as conn:
        return sorted(r[0] for r in conn.execute("select nspname from pg_namespace where nspname like %s",
                                                 [prefix + "%"]).fetchall())


def assert_postgres_equals_version(url: str, schema: str, out: Path, manifest: dict) -> None:
    """Row counts and contents of every table equal the Parquet files of ``manifest``'s version."""
    folder = out / "versions" / manifest["version"]
    with psycopg.connect(url) as conn:
        live = read_set(conn, schema)
        assert sorted(live) == sorted([t["name"] for t in manifest["tables"]] + [pub.INFO_TABLE])
        for t in manifest["tables"]:
            pcols, prows = parquet_rows(folder / t["parquet"])
            gcols, grows = pg_rows(conn, schema, t["name"])
            count = conn.execute(f'select count(*) from "{schema}"."{t["name"]}"').fetchone()[0]
            assert count == len(prows) == t["rows"], t["name"]
            assert gcols == pcols, t["name"]
            assert grows == prows, t["name"]
        info = conn.execute(f'select run_id, version, published_at, as_of_date from "{schema}".publish_info').fetchall()
    assert len(info) == 1
    run_id, version, published_at, as_of = info[0]
    assert (run_id, version, str(as_of)) == (manifest["run_id"], manifest["version"], manifest["as_of_date"])
    assert published_at == datetime.fromisoformat(manifest["published_at"])  # the same instant


# ----------------------------------------------------------------------------- no server needed


def test_duckdb_types_map_to_postgres_types():
    expected = {
        "INTEGER": "integer", "BIGINT": "bigint", "SMALLINT": "smallint", "TINYINT": "smallint",
        "HUGEINT": "numeric(39,0)", "UBIGINT": "numeric(20,0)", "UINTEGER": "bigint",
        "DOUBLE": "double precision", "FLOAT": "real", "DECIMAL(18,2)": "numeric(18,2)",
        "DECIMAL(38, 10)": "numeric(38,10)", "VARCHAR": "text", "DATE": "date", "TIMESTAMP": "timestamp",
        "TIMESTAMP_NS": "timestamp", "TIMESTAMP WITH TIME ZONE": "timestamptz", "BOOLEAN": "boolean",
        "boolean": "boolean", "UUID": "uuid", "BLOB": "bytea",
    }
    assert {t: pub.postgres_type(t) for t in expected} == expected
    for unsupported in ("INTEGER[]", "STRUCT(a INTEGER)", "MAP(VARCHAR, INTEGER)", "DECIMAL(x,y)"):
        with pytest.raises(pub.PublishError, match="no Postgres equivalent"):
            pub.postgres_type(unsupported)


def test_postgres_settings(pipeline_env, monkeypatch):
    from orchestration.settings import SettingsError, load_settings

    s = pipeline_env()
    assert s.publish_postgres_url is None and s.publish_postgres_schema == "churn"
    url = f"postgresql://bi:{PASSWORD}@db.example:5432/analytics"
    s = pipeline_env(CHURN_PUBLISH_POSTGRES_URL=url, CHURN_PUBLISH_POSTGRES_SCHEMA="bi_churn")
    assert s.publish_postgres_url == url and s.publish_postgres_schema == "bi_churn"
    assert PASSWORD not in repr(s)
    for bad in (f"mysql://bi:{PASSWORD}@db/x", f"postgresql://bi:{PASSWORD}@db:port/x", "not a url"):
        monkeypatch.setenv("CHURN_PUBLISH_POSTGRES_URL", bad)
        with pytest.raises(SettingsError, match="CHURN_PUBLISH_POSTGRES_URL") as err:
            load_settings()
        assert PASSWORD not in str(err.value) and "\n" not in str(err.value)
    monkeypatch.setenv("CHURN_PUBLISH_POSTGRES_URL", url)
    for bad in ("Bad-Name", "public", "pg_x", "a" * 46):
        monkeypatch.setenv("CHURN_PUBLISH_POSTGRES_SCHEMA", bad)
        with pytest.raises(SettingsError, match="CHURN_PUBLISH_POSTGRES_SCHEMA") as err:
            load_settings()
        assert "\n" not in str(err.value)


# ----------------------------------------------------------------------------- against the server


def test_publish_loads_the_same_tables_as_the_parquet_files(pg, tmp_path):
    url, schema = pg
    out = tmp_path / "published"
    manifest = do_publish(make_warehouse(tmp_path / "wh.duckdb"), out, "run-1", postgres_url=url,
                          postgres_schema=schema)
    assert manifest["postgres"] == {"schema": schema}
    assert_postgres_equals_version(url, schema, out, manifest)
    assert schemas(url, schema) == [schema]  # no staging or old schema left
    with psycopg.connect(url) as conn:
        types = dict(conn.execute("select column_name, data_type from information_schema.columns "
                                  "where table_schema = %s and table_name = 'fct_churn_segment_period'",
                                  [schema]).fetchall())
        # suppression happened once, at staging: Postgres has the same nulls as the files
        hidden = conn.execute(f'select count(*) from "{schema}".fct_churn_segment_period '
                              "where is_suppressed = 1 and customers_start is null").fetchone()[0]
    assert types["period_start"] == "date" and types["churn_rate"] == "double precision"
    assert types["customers_start"] == "bigint" and types["segment_value"] == "text"
    assert types["is_suppressed"] == "integer"
    assert hidden == manifest["suppression"]["rows_suppressed"]["fct_churn_segment_period"] == 6


def test_a_second_publish_replaces_the_set(pg, tmp_path):
    url, schema = pg
    out = tmp_path / "published"
    first = do_publish(make_warehouse(tmp_path / "wh.duckdb", variant=0), out, "run-1", postgres_url=url,
                       postgres_schema=schema)
    second = do_publish(make_warehouse(tmp_path / "wh.duckdb", variant=1), out, "run-2", postgres_url=url,
                        postgres_schema=schema)
    assert first["tables"] != second["tables"]  # the variants differ in content
    assert_postgres_equals_version(url, schema, out, second)
    assert schemas(url, schema) == [schema]
    with psycopg.connect(url) as conn:
        assert conn.execute(f'select variant from "{schema}".fct_cohort_retention').fetchall() == [(1,)]


def _wait_for_publisher_blocked(url: str, timeout: float = 120.0) -> None:
    """Until the publisher's swap waits for a lock held by the reader."""
    deadline = time.monotonic() + timeout
    with psycopg.connect(url, autocommit=True) as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute("select count(*) from pg_stat_activity where application_name = 'churn-publish' "
                                   "and wait_event_type = 'Lock'").fetchone()[0]
            if waiting:
                return
            time.sleep(0.05)
    raise AssertionError("the publisher never waited for the reader's locks")


def test_a_reader_in_a_transaction_sees_the_old_set_then_a_new_connection_sees_the_new_one(pg, tmp_path):
    url, schema = pg
    out = tmp_path / "published"
    old = do_publish(make_warehouse(tmp_path / "wh.duckdb", variant=0), out, "old", postgres_url=url,
                     postgres_schema=schema)
    new_wh = make_warehouse(tmp_path / "wh2.duckdb", variant=1)
    reader = psycopg.connect(url)
    reader.isolation_level = psycopg.IsolationLevel.REPEATABLE_READ
    before = read_set(reader, schema)  # opens the transaction and reads every table of the old set
    assert before["publish_info"][1][0][1] == "old"

    errors: list[BaseException] = []
    result: dict = {}

    def publisher():
        try:
            result["manifest"] = do_publish(new_wh, out, "new", postgres_url=url, postgres_schema=schema)
        except BaseException as exc:  # noqa: BLE001 - reported by the main thread
            errors.append(exc)

    thread = threading.Thread(target=publisher)
    thread.start()
    try:
        _wait_for_publisher_blocked(url)
        # mid-publish: the reader still sees the complete old set, twice over
        assert read_set(reader, schema) == before
        assert read_set(reader, schema) == before
        # the files are switched after Postgres, so they still serve the old version too
        assert pub.current_version(out) == "old" and thread.is_alive()
    finally:
        reader.commit()
        reader.close()
        thread.join(timeout=120)
    assert not errors, errors
    assert pub.current_version(out) == "new"
    assert_postgres_equals_version(url, schema, out, result["manifest"])
    with psycopg.connect(url) as fresh:
        after = read_set(fresh, schema)
    assert after != before and after["publish_info"][1][0][1] == "new"
    assert old["version"] == "old" and schemas(url, schema) == [schema]


def _live_state(url: str, schema: str) -> dict:
    with psycopg.connect(url) as conn:
        return read_set(conn, schema)


def test_a_copy_failing_mid_load_leaves_the_live_schema_and_files_and_no_staging_schema(pg, tmp_path, monkeypatch):
    url, schema = pg
    out = tmp_path / "published"
    good = do_publish(make_warehouse(tmp_path / "wh.duckdb", variant=0), out, "good", postgres_url=url,
                      postgres_schema=schema)
    before = _live_state(url, schema)
    real, calls = pub.copy_table, []

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 3:  # two tables are already loaded into the staging schema
            raise OSError("connection reset while copying")
        return real(*args, **kwargs)

    monkeypatch.setattr(pub, "copy_table", flaky)
    with pytest.raises(pub.PublishError) as err:
        do_publish(make_warehouse(tmp_path / "wh.duckdb", variant=1), out, "bad", postgres_url=url,
                   postgres_schema=schema)
    message = str(err.value)
    assert "\n" not in message and message.startswith("postgres target (") and "loading table" in message
    assert PASSWORD not in message and "***" in message
    assert len(calls) == 3
    assert _live_state(url, schema) == before
    assert schemas(url, schema) == [schema]
    assert_postgres_equals_version(url, schema, out, good)
    # the file set was never switched, and its staged version is gone
    assert pub.current_version(out) == "good" and sorted(p.name for p in (out / "versions").iterdir()) == ["good"]
    assert not list(out.glob(".staging-*"))


@pytest.mark.parametrize("bad_relation", [
    "select 'a' || chr(0) || 'b' as text_with_nul",  # Postgres text cannot hold NUL (psycopg refuses it)
    "select [1, 2] as a_list",  # no Postgres type for it
])
def test_a_table_postgres_cannot_take_fails_the_publish_and_changes_nothing(pg, tmp_path, bad_relation):
    url, schema = pg
    out = tmp_path / "published"
    wh = make_warehouse(tmp_path / "wh.duckdb")
    good = do_publish(wh, out, "good", postgres_url=url, postgres_schema=schema)
    before = _live_state(url, schema)
    con = duckdb.connect(str(wh))
    con.execute(f"create or replace table marts.zz_bad as {bad_relation}")
    try:
        with pytest.raises(pub.PublishError, match="loading table zz_bad") as err:
            pub.publish(con, {**PUBLISHED_TABLES, "zz_bad": "marts.zz_bad"}, out, run_id="bad",
                        extra_manifest={"as_of_date": "2024-02-29"}, postgres_url=url, postgres_schema=schema)
    finally:
        con.close()
    assert "\n" not in str(err.value) and PASSWORD not in str(err.value)
    assert _live_state(url, schema) == before and schemas(url, schema) == [schema]
    assert pub.current_version(out) == "good" and good["version"] == "good"


def test_a_server_error_mid_load_leaves_the_live_schema_and_no_staging_schema(pg, tmp_path):
    """A real error raised by the server while the staging schema is half loaded: an event trigger
    refuses CREATE TABLE for the last published table, after the others were created and copied."""
    url, schema = pg
    out = tmp_path / "published"
    do_publish(make_warehouse(tmp_path / "wh.duckdb", variant=0), out, "good", postgres_url=url, postgres_schema=schema)
    before = _live_state(url, schema)
    last = list(PUBLISHED_TABLES)[-1]
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"""
            create function refuse_{schema}() returns event_trigger language plpgsql as $$
            begin
              if exists (select 1 from pg_event_trigger_ddl_commands()
                         where object_identity like '{schema}\\_\\_staging\\_%.{last}') then
                raise exception 'disk full (injected by the test)';
              end if;
            end $$""")
        admin.execute(f"create event trigger refuse_{schema} on ddl_command_end when tag in ('CREATE TABLE') "
                      f"execute function refuse_{schema}()")
        try:
            with pytest.raises(pub.PublishError, match=f"loading table {last} failed .*disk full") as err:
                do_publish(make_warehouse(tmp_path / "wh.duckdb", variant=1), out, "bad", postgres_url=url,
                           postgres_schema=schema)
        finally:
            admin.execute(f"drop event trigger refuse_{schema}")
            admin.execute(f"drop function refuse_{schema}()")
    assert "\n" not in str(err.value) and PASSWORD not in str(err.value)
    assert _live_state(url, schema) == before and schemas(url, schema) == [schema]
    assert pub.current_version(out) == "good"


def test_a_failing_swap_leaves_the_live_schema_and_the_files(pg, tmp_path):
    """The server refuses the swap transaction (an event trigger on ALTER SCHEMA): nothing is switched."""
    url, schema = pg
    out = tmp_path / "published"
    do_publish(make_warehouse(tmp_path / "wh.duckdb", variant=0), out, "good", postgres_url=url, postgres_schema=schema)
    before = _live_state(url, schema)
    with psycopg.connect(url, autocommit=True) as admin:
        admin.execute(f"""
            create function refuse_{schema}() returns event_trigger language plpgsql as $$
            begin raise exception 'no renames today (injected by the test)'; end $$""")
        admin.execute(f"create event trigger refuse_{schema} on ddl_command_end when tag in ('ALTER SCHEMA') "
                      f"execute function refuse_{schema}()")
        try:
            with pytest.raises(pub.PublishError, match="switching failed .*no renames today") as err:
                do_publish(make_warehouse(tmp_path / "wh.duckdb", variant=1), out, "bad", postgres_url=url,
                           postgres_schema=schema)
        finally:
            admin.execute(f"drop event trigger refuse_{schema}")
            admin.execute(f"drop function refuse_{schema}()")
    assert "\n" not in str(err.value) and PASSWORD not in str(err.value)
    assert _live_state(url, schema) == before and schemas(url, schema) == [schema]
    assert pub.current_version(out) == "good" and sorted(p.name for p in (out / "versions").iterdir()) == ["good"]


def test_a_files_switch_failing_after_the_postgres_switch_is_reported_honestly(pg, tmp_path, monkeypatch):
    url, schema = pg
    out = tmp_path / "published"
    do_publish(make_warehouse(tmp_path / "wh.duckdb", variant=0), out, "old", postgres_url=url, postgres_schema=schema)

    def read_only_disk(*args, **kwargs):
        raise OSError(30, "Read-only file system")

    monkeypatch.setattr(pub, "_switch", read_only_disk)
    with pytest.raises(pub.PublishError) as err:
        do_publish(make_warehouse(tmp_path / "wh.duckdb", variant=1), out, "new", postgres_url=url,
                   postgres_schema=schema)
    message = str(err.value)
    assert "\n" not in message
    assert message.startswith("version new is live in postgres but switching files failed")
    assert "files still serve the previous version; publish again" in message
    assert _live_state(url, schema)["publish_info"][1][0][1] == "new"
    assert pub.current_version(out) == "old" and sorted(p.name for p in (out / "versions").iterdir()) == ["old"]
    monkeypatch.undo()
    manifest = do_publish(make_warehouse(tmp_path / "wh.duckdb", variant=1), out, "again", postgres_url=url,
                          postgres_schema=schema)
    assert pub.current_version(out) == "again"
    assert_postgres_equals_version(url, schema, out, manifest)


def test_a_bad_url_gives_one_line_without_the_password(tmp_path, postgres_server):  # noqa: F811
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]  # nothing listens here once closed
    url = f"postgresql://bi:{PASSWORD}@127.0.0.1:{port}/analytics"
    out = tmp_path / "published"
    with pytest.raises(pub.PublishError) as err:
        do_publish(make_warehouse(tmp_path / "wh.duckdb"), out, "run-1", postgres_url=url, postgres_schema="churn")
    message = str(err.value)
    assert "\n" not in message and PASSWORD not in message
    assert message.startswith(f"postgres target (postgresql://bi:***@127.0.0.1:{port}/analytics, schema churn): "
                              "connecting failed")
    assert "check CHURN_PUBLISH_POSTGRES_URL" in message
    assert pub.current_version(out) is None and not (out / "manifest.json").exists()


def test_a_second_publisher_waits_for_the_advisory_lock(pg, tmp_path, monkeypatch):
    url, schema = pg
    out = tmp_path / "published"
    wh = make_warehouse(tmp_path / "wh.duckdb")
    do_publish(wh, out, "first", postgres_url=url, postgres_schema=schema)
    before = _live_state(url, schema)
    monkeypatch.setattr(pub, "PG_PUBLISHER_WAIT_S", 1.0)
    key = pub.PostgresTarget(url, schema)._lock_key()
    with psycopg.connect(url, autocommit=True) as other:  # another publisher, mid-publish
        assert other.execute("select pg_try_advisory_lock(%s)", [key]).fetchone()[0]
        with pytest.raises(TimeoutError, match="another publisher"):
            do_publish(wh, out, "second", postgres_url=url, postgres_schema=schema)
        assert pub.is_transient(TimeoutError())  # so the Dagster step retries it
    assert _live_state(url, schema) == before and pub.current_version(out) == "first"
    do_publish(wh, out, "third", postgres_url=url, postgres_schema=schema)  # lock released with the session
    assert _live_state(url, schema)["publish_info"][1][0][1] == "third"


def test_leftovers_of_a_dead_publisher_are_dropped_and_a_foreign_schema_is_refused(pg, tmp_path):
    url, schema = pg
    out = tmp_path / "published"
    wh = make_warehouse(tmp_path / "wh.duckdb")
    with psycopg.connect(url, autocommit=True) as conn:
        conn.execute(f'create schema "{schema}__staging_dead0001"')
        conn.execute(f'create table "{schema}__staging_dead0001".half (x int)')
        conn.execute(f'create schema "{schema}__old"')
        conn.execute(f'create schema "{schema}"')  # someone else's schema of that name
        conn.execute(f'create table "{schema}".precious (x int)')
    with pytest.raises(pub.PublishError, match="was not made by this publisher"):
        do_publish(wh, out, "run-1", postgres_url=url, postgres_schema=schema)
    assert schemas(url, schema) == [schema]  # leftovers dropped, the foreign schema kept
    with psycopg.connect(url, autocommit=True) as conn:
        assert conn.execute(f'select count(*) from "{schema}".precious').fetchone() == (0,)
        conn.execute(f'drop schema "{schema}" cascade')
    manifest = do_publish(wh, out, "run-2", postgres_url=url, postgres_schema=schema)
    assert_postgres_equals_version(url, schema, out, manifest)


# ----------------------------------------------------------------------------- the Dagster asset


def test_the_publish_step_publishes_to_postgres_when_configured(publish_env, pg, pipeline_env):  # noqa: F811
    url, schema = pg
    settings = pipeline_env(CHURN_PUBLISH_POSTGRES_URL=url, CHURN_PUBLISH_POSTGRES_SCHEMA=schema)
    result = _materialize(settings)
    assert result.success
    manifest = pub.read_manifest(settings.published_dir)
    assert manifest["postgres"] == {"schema": schema}
    assert_postgres_equals_version(url, schema, settings.published_dir, manifest)
    materialized = [e.event_specific_data.materialization for e in result.all_events
                    if e.event_type_value == "ASSET_MATERIALIZATION"]
    assert materialized and all(m.metadata["postgres_schema"].value == schema for m in materialized)


def test_the_publish_step_fails_in_one_line_naming_the_postgres_target(publish_env, pipeline_env):  # noqa: F811
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    settings = pipeline_env(CHURN_PUBLISH_POSTGRES_URL=f"postgresql://bi:{PASSWORD}@127.0.0.1:{port}/analytics")
    result = _materialize(settings)
    assert not result.success
    failure = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"][0]
    description = failure.event_specific_data.user_failure_data.description
    assert "\n" not in description and PASSWORD not in description
    assert "postgres target (postgresql://bi:***@127.0.0.1" in description
    assert "check CHURN_PUBLISH_POSTGRES_URL" in description
    assert "STEP_UP_FOR_RETRY" not in [e.event_type_value for e in result.all_events]
    assert not (settings.published_dir / "manifest.json").exists()  # the files were not switched either
