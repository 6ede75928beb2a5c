"""Security: identifiers that could reach SQL are validated, values are parameters, paths stay put."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import duckdb
import pytest

from orchestration.ingest.loader import IngestError, load_table
from orchestration.settings import REPO_ROOT, SettingsError, load_settings

RUN_TS = datetime(2024, 6, 1, 12)
EVIL = 'x"; drop table raw.customers; --'


def test_segment_dimension_injection_is_refused_by_the_settings(monkeypatch):
    monkeypatch.setenv("CHURN_SEGMENT_DIMENSIONS", f"country,{EVIL}")
    with pytest.raises(SettingsError) as exc:
        load_settings()
    assert "is not a safe identifier" in str(exc.value) and "\n" not in str(exc.value)


def test_injection_through_a_customers_column_is_refused_and_changes_nothing(tmp_path, monkeypatch):
    good, evil = tmp_path / "good", tmp_path / "evil"
    good.mkdir()
    evil.mkdir()
    (good / "customers.csv").write_text("customer_id,country\nC1,US\n")
    quoted = '"' + EVIL.replace('"', '""') + '"'
    (evil / "customers.csv").write_text(f"customer_id,{quoted}\nC1,1\n")
    con = duckdb.connect()
    load_table(con, good, "customers", run_ts=RUN_TS)
    with pytest.raises(IngestError, match="is not allowed"):
        load_table(con, evil, "customers", run_ts=RUN_TS)
    assert con.execute("select customer_id, country from raw.customers").fetchall() == [("C1", "US")]
    # the same name as a segment dimension (what dbt would splice into SQL) never gets that far
    monkeypatch.setenv("CHURN_SEGMENT_DIMENSIONS", EVIL)
    with pytest.raises(SettingsError):
        load_settings()


def test_file_names_and_values_are_parameters_not_sql(tmp_path):
    landing = tmp_path / "landing"
    (landing / "orders").mkdir(parents=True)
    (landing / "customers.csv").write_text("customer_id,country\nC1,US\nC2,\"'); drop table raw.customers; --\"\n")
    (landing / "orders" / "o'; drop table raw.customers; --.csv").write_text(
        "order_id,customer_id,order_date,amount\no1,C1,2024-01-05,1\no2,C2,not'a date,2\n")
    con = duckdb.connect()
    load_table(con, landing, "customers", run_ts=RUN_TS)
    load_table(con, landing, "orders", run_ts=RUN_TS)
    assert con.execute("select count(*) from raw.customers").fetchone() == (2,)
    assert con.execute("select order_id, _source_file like '%drop table%' from raw.orders").fetchall() == [("o1", True)]
    assert con.execute("select reason from raw.quarantine").fetchall() == [
        ("order_date: 'not'a date' is not a date; only ISO 8601 (YYYY-MM-DD) is accepted",)]


def test_dbt_refuses_a_hostile_column_even_if_it_reached_the_warehouse(tmp_path):
    """Defence in depth: were the loader bypassed, dbt fails on the name and drops nothing."""
    wh = tmp_path / "wh.duckdb"
    con = duckdb.connect(str(wh))
    con.execute("create schema raw")
    con.execute(
        "create table raw.customers as select 'C1' as customer_id, date '2024-01-01' as signup_date, "
        "cast(null as bigint) as birth_year, cast(null as timestamp) as updated_at, "
        f"'x' as \"{EVIL.replace(chr(34), chr(34) * 2)}\", 'f' as _source_file, 1::bigint as _row_number, "
        "now()::timestamp as _loaded_at"
    )
    con.close()
    dbt = Path(sys.executable).with_name("dbt")
    proc = subprocess.run(
        [str(dbt), "run", "--select", "stg_crm__customers", "--project-dir", str(REPO_ROOT / "dbt_project"),
         "--profiles-dir", str(REPO_ROOT / "dbt_project"), "--target-path", str(tmp_path / "target"),
         "--log-path", str(tmp_path / "logs")],
        env={**os.environ, "CHURN_WAREHOUSE_PATH": str(wh)}, capture_output=True, text=True,
    )
    assert proc.returncode != 0
    con = duckdb.connect(str(wh), read_only=True)
    assert con.execute("select count(*) from raw.customers").fetchone() == (1,)
    con.close()


def test_no_secrets_in_the_repository():
    files = subprocess.run(["git", "ls-files"], cwd=REPO_ROOT, capture_output=True, text=True, check=True).stdout.split()
    patterns = [
        re.compile(r"AKIA[0-9A-Z]{16}"),  # AWS access key id
        re.compile(r"-----BEGIN (RSA |EC |OPENSSH )?PRIVATE KEY-----"),
        re.compile(r"(?i)(password|passwd|secret|api[_-]?key|token)\s*[:=]\s*['\"][^'\"\s]{8,}['\"]"),
        re.compile(r"ghp_[A-Za-z0-9]{36}"),
        re.compile(r"xox[baprs]-[A-Za-z0-9-]{10,}"),
    ]
    hits = []
    for name in files:
        path = REPO_ROOT / name
        if not path.is_file() or path.stat().st_size > 2_000_000 or path.suffix in {".parquet", ".png", ".duckdb"}:
            continue
        text = path.read_text(errors="ignore")
        hits += [f"{name}: {p.pattern}" for p in patterns if p.search(text)]
    assert hits == []


def test_the_ui_binds_to_localhost_only():
    makefile = (REPO_ROOT / "Makefile").read_text()
    ui = [line for line in makefile.splitlines() if line.startswith("\t") and "dagster dev" in line]  # recipes only
    assert ui and all("-h 127.0.0.1" in line for line in ui)


def test_written_paths_must_stay_inside_the_data_dir(tmp_path, monkeypatch):
    data = tmp_path / "data"
    (data / "warehouse").parent.mkdir(parents=True)
    outside = tmp_path / "outside"
    outside.mkdir()
    os.symlink(outside, data / "warehouse")
    monkeypatch.setenv("CHURN_DATA_DIR", str(data))
    settings = load_settings()
    with pytest.raises(SettingsError, match="warehouse .* outside CHURN_DATA_DIR"):
        settings.check_paths()
