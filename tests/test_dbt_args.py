"""The dbt arguments are built by pure functions from the typed settings."""

from __future__ import annotations

import json
from datetime import date
from pathlib import Path

import pytest

from orchestration.dbt_args import dbt_build_args, dbt_env, dbt_vars
from orchestration.settings import Settings, SettingsError, load_settings


def test_vars_carry_the_definition():
    s = Settings(churn_definition="inactivity", inactivity_days=45, period_grain="week", as_of_date=date(2024, 1, 31))
    assert dbt_vars(s) == {"churn_definition": "inactivity", "inactivity_days": 45, "grace_days": 7,
                           "period_grain": "week", "as_of_date": "2024-01-31",
                           "activity_sources": ["orders"], "max_train_rows": 200_000, "seed": 42}


def test_build_args_are_json_vars():
    s = Settings(segment_dimensions=("country", "plan"))
    args = dbt_build_args(s, ["--select", "fct_churn_period"])
    assert args[0] == "build" and args[1] == "--vars" and args[3:] == ["--select", "fct_churn_period"]
    assert json.loads(args[2])["segment_dimensions"] == ["country", "plan"]
    assert json.loads(args[2])["as_of_date"] is None


def test_env_points_dbt_at_the_private_warehouse(tmp_path):
    s = Settings(source="telco", data_dir=tmp_path)
    assert dbt_env(s) == {"CHURN_WAREHOUSE_PATH": str(tmp_path / "warehouse" / "telco.duckdb"),
                          "CHURN_DUCKDB_MEMORY_LIMIT": "4GB", "CHURN_RECOMPUTE_FROM": ""}
    # a partitioned run hands dbt its first data day (by environment: a changed var re-parses everything)
    assert dbt_env(s, recompute_from=date(1998, 3, 5))["CHURN_RECOMPUTE_FROM"] == "1998-03-05"


@pytest.mark.parametrize(
    "env,message",
    [
        ({"CHURN_SOURCE": "excel"}, "CHURN_SOURCE='excel' is not valid"),
        ({"CHURN_INACTIVITY_DAYS": "ninety"}, "CHURN_INACTIVITY_DAYS='ninety' is not an integer"),
        ({"CHURN_AS_OF_DATE": "31.01.2024"}, "CHURN_AS_OF_DATE='31.01.2024' is not an ISO date"),
        ({"CHURN_SEGMENT_DIMENSIONS": "country,plan; drop table x"}, "not a safe identifier"),
        ({"CHURN_ACTIVITY_SOURCES": "orders,pageviews"}, "CHURN_ACTIVITY_SOURCES entry 'pageviews' is not valid"),
        ({"CHURN_SCHEDULE_TIMEZONE": "Mars/Base"}, "CHURN_SCHEDULE_TIMEZONE='Mars/Base' is not a time zone"),
        ({"CHURN_PARTITION_START_DATE": "1.1.1997"}, "CHURN_PARTITION_START_DATE='1.1.1997' is not an ISO date"),
    ],
)
def test_bad_settings_give_one_line_errors(monkeypatch, env, message):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    with pytest.raises(SettingsError, match=message.replace("(", r"\(").replace(")", r"\)")) as exc:
        load_settings()
    assert "\n" not in str(exc.value)


def test_folder_source_needs_a_folder():
    with pytest.raises(SettingsError, match="CHURN_LANDING_DIR"):
        Settings(source="folder").resolved_landing_dir
    assert Settings(source="folder", landing_dir=Path("/x")).resolved_landing_dir == Path("/x")


def test_each_landing_folder_gets_its_own_warehouse(tmp_path):
    # two unrelated folders must never share an SCD2 snapshot; the same folder always maps back
    a = Settings(source="folder", landing_dir=Path("/data/a"), data_dir=tmp_path)
    b = Settings(source="folder", landing_dir=Path("/data/b"), data_dir=tmp_path)
    a2 = Settings(source="folder", landing_dir=Path("/data/a"), data_dir=tmp_path)
    assert a.warehouse_path != b.warehouse_path and a.warehouse_path == a2.warehouse_path
    assert a.warehouse_path.parent == tmp_path / "warehouse" and a.warehouse_path.name.startswith("folder-")


def test_full_refresh_setting_adds_the_flag(monkeypatch):
    # incremental by default; CHURN_FULL_REFRESH=1 rebuilds the incremental models in full
    assert "--full-refresh" not in dbt_build_args(Settings())
    assert dbt_build_args(Settings(full_refresh=True), ["--select", "x"])[-1] == "--full-refresh"
    monkeypatch.setenv("CHURN_FULL_REFRESH", "1")
    assert load_settings().full_refresh is True


def test_duckdb_memory_limit_setting(monkeypatch, tmp_path):
    # the bound reaches dbt's environment and the warehouse connection; a typo is a one-line error
    monkeypatch.setenv("CHURN_DUCKDB_MEMORY_LIMIT", "1.5GB")
    s = load_settings()
    assert dbt_env(s)["CHURN_DUCKDB_MEMORY_LIMIT"] == "1.5GB" and s.duckdb_config == {"memory_limit": "1.5GB"}
    import duckdb

    con = duckdb.connect(str(tmp_path / "w.duckdb"), config=s.duckdb_config)
    # DuckDB reports 1.5 GB as 1.3 GiB (1.5e9 bytes)
    assert con.execute("select current_setting('memory_limit')").fetchone()[0] == "1.3 GiB"
    con.close()
    monkeypatch.setenv("CHURN_DUCKDB_MEMORY_LIMIT", "4 gigs")
    with pytest.raises(SettingsError, match="CHURN_DUCKDB_MEMORY_LIMIT='4 gigs' is not a memory size"):
        load_settings()
