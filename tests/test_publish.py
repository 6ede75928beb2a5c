"""Publishing: complete versions switched in atomically, rollback, suppression, retries, the check guard.

These tests publish from a small hand-made warehouse (the five published relations plus the run
parameters), so they run in seconds; the whole job is exercised in test_e2e / test_crash_*.
"""

from __future__ import annotations

import errno
import hashlib
import json
import os
from datetime import date
from pathlib import Path

import dagster as dg
import duckdb
import pandas as pd
import pytest

from orchestration import publish as pub
from orchestration.assets.publish import PUBLISHED_TABLES, published_churn_tables
from orchestration.resources import WarehouseResource

FIGURES = ["customers_start", "customers_new", "customers_reactivated", "customers_churned", "customers_end",
           "customers_transient", "churn_rate", "churn_rate_ci_low", "churn_rate_ci_high"]

# (period, dimension, value): start, new, reactivated, churned, transient. Segment size (customers
# active at some point in the period) = start + new + reactivated + transient.
SEGMENTS = [
    ("2024-01-01", "country", "us", 40, 5, 3, 4, 2),    # 50
    ("2024-01-01", "country", "de", 10, 1, 0, 1, 1),    # 12: the next smallest -> secondary suppression
    ("2024-01-01", "country", "fr", 6, 2, 0, 1, 1),     # 9 < 10 -> suppressed
    ("2024-01-01", "plan", "a", 25, 3, 1, 2, 1),        # 30
    ("2024-01-01", "plan", "b", 3, 1, 0, 1, 0),         # 4 -> suppressed
    ("2024-01-01", "plan", "c", 2, 1, 0, 0, 0),         # 3 -> suppressed (two hidden: no secondary needed)
    ("2024-01-01", "tenure_band", "0-3m", 100, 0, 0, 5, 0),  # alone in its group
    ("2024-02-01", "country", "us", 55, 3, 1, 2, 1),    # 60
    ("2024-02-01", "country", "de", 8, 1, 1, 0, 0),     # 10: not below 10, but the only other -> secondary
    ("2024-02-01", "country", "fr", 0, 0, 0, 0, 0),     # 0 -> suppressed
]
SUPPRESSED_SEGMENTS = {("2024-01-01", "country", "fr"), ("2024-01-01", "country", "de"), ("2024-01-01", "plan", "b"),
                       ("2024-01-01", "plan", "c"), ("2024-02-01", "country", "fr"), ("2024-02-01", "country", "de")}
# churn_risk_by_segment: (dimension, value, customers, mean p, expected churners, revenue at risk, high risk)
RISK = [("all", "all", 200, 0.2, 40.0, 800.0, 20), ("country", "us", 150, 0.2, 30.0, 600.0, 15),
        ("country", "de", 45, 0.2, 9.0, 180.0, 4), ("country", "fr", 5, 0.2, 1.0, 20.0, 1),
        ("plan", "a", 100, 0.1, 10.0, 100.0, 5), ("plan", "b", 100, 0.3, 30.0, 700.0, 15)]
SUPPRESSED_RISK = {("country", "fr"), ("country", "de")}


def make_warehouse(path: Path, variant: int = 0) -> Path:
    """The relations the publish asset reads; ``variant`` changes the figures so sets differ."""
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    for schema in ("marts", "ml", "intermediate"):
        con.execute(f"create schema if not exists {schema}")
    con.execute("create or replace table intermediate.int_run_parameters as "
                "select date '2024-02-29' as as_of_date, 'contractual' as churn_definition")
    periods = pd.DataFrame({"period_start": pd.to_datetime(["2024-01-01", "2024-02-01"]).date,
                            "customers_start": [100 + variant, 110 + variant], "customers_churned": [5, 6 + variant]})
    periods["churn_rate"] = periods.customers_churned / periods.customers_start
    con.execute("create or replace table marts.fct_churn_period as select * from periods")
    seg = pd.DataFrame(SEGMENTS, columns=["period_start", "segment_dimension", "segment_value", "customers_start",
                                          "customers_new", "customers_reactivated", "customers_churned",
                                          "customers_transient"])
    seg["period_start"] = pd.to_datetime(seg.period_start).dt.date
    seg["period_end"] = (pd.to_datetime(seg.period_start) + pd.offsets.MonthEnd(0)).dt.date
    seg["customers_end"] = seg.customers_start + seg.customers_new + seg.customers_reactivated - seg.customers_churned
    seg["churn_rate"] = (seg.customers_churned / seg.customers_start.where(seg.customers_start > 0)) + variant / 1000
    seg["churn_rate_ci_low"] = seg.churn_rate / 2
    seg["churn_rate_ci_high"] = seg.churn_rate * 2
    seg["is_small_segment"] = (seg.customers_start < 30).astype("int32")
    con.execute("create or replace table marts.fct_churn_segment_period as select * from seg")
    con.execute("create or replace table marts.fct_cohort_retention as select date '2024-01-01' as cohort_period, "
                f"{variant} as variant")
    scores = pd.DataFrame({"customer_id": [f"C{i}" for i in range(5)], "churn_probability": [0.1, 0.2, 0.3, 0.6, 0.9],
                           "model_version": f"m{variant}"})
    con.execute("create or replace table ml.customer_churn_scores as select * from scores")
    risk = pd.DataFrame(RISK, columns=["segment_dimension", "segment_value", "customers", "mean_churn_probability",
                                       "expected_churners", "revenue_at_risk", "high_risk_customers"])
    risk["revenue_at_risk"] += variant
    con.execute("create or replace table ml.churn_risk_by_segment as select * from risk")
    con.close()
    return path


def do_publish(wh: Path, out: Path, run_id: str, **kw) -> dict:
    con = duckdb.connect(str(wh))
    try:
        return pub.publish(con, PUBLISHED_TABLES, out, run_id=run_id, extra_manifest={"as_of_date": "2024-02-29"}, **kw)
    finally:
        con.close()


def sha(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def assert_complete_set(out: Path) -> dict:
    """The live set: manifest via the top-level names, every file matching its checksum and row count."""
    manifest = json.loads((out / "manifest.json").read_text())
    for t in manifest["tables"]:
        p = out / t["parquet"]
        assert sha(p) == t["sha256"]
        assert len(pd.read_parquet(p)) == t["rows"]
    assert sha(out / "churn.duckdb") == manifest["duckdb_sha256"]
    con = duckdb.connect(str(out / "churn.duckdb"), read_only=True)
    assert con.execute("select run_id, version from publish_info").fetchone() == (manifest["run_id"], manifest["version"])
    for t in manifest["tables"]:
        assert con.execute(f"select count(*) from {t['name']}").fetchone()[0] == t["rows"]
    con.close()
    assert pub.verify(out) == [] and pub.verify(out / "versions" / manifest["version"]) == []
    return manifest


def test_publish_writes_a_complete_version_behind_stable_names(tmp_path):
    wh, out = make_warehouse(tmp_path / "wh.duckdb"), tmp_path / "published"
    manifest = do_publish(wh, out, "run-1")
    assert manifest["version"] == "run-1" and pub.current_version(out) == "run-1"
    assert_complete_set(out)
    for name in [*(f"{t}.parquet" for t in PUBLISHED_TABLES), "churn.duckdb", "manifest.json"]:
        assert (out / name).is_symlink() and os.readlink(out / name) == f"current/{name}"
    assert os.readlink(out / "current") == "versions/run-1"
    assert not list(out.glob(".staging-*")) and not list(out.glob(".link-*"))
    # BI tables equal the warehouse relations (suppression aside)
    period = pd.read_parquet(out / "fct_churn_period.parquet")
    assert period.customers_start.tolist() == [100, 110]


def test_only_the_last_versions_are_kept_and_history_is_logged(tmp_path):
    out = tmp_path / "published"
    for i in range(5):
        wh = make_warehouse(tmp_path / "wh.duckdb", variant=i)
        do_publish(wh, out, f"run-{i}", keep_versions=3)
    assert sorted(p.name for p in (out / "versions").iterdir()) == ["run-2", "run-3", "run-4"]
    assert [v["version"] for v in pub.list_versions(out)] == ["run-4", "run-3", "run-2"]
    manifest = assert_complete_set(out)
    assert manifest["run_id"] == "run-4"
    assert pd.read_parquet(out / "fct_cohort_retention.parquet").variant.tolist() == [4]
    events = [json.loads(line) for line in (out / "history.jsonl").read_text().splitlines()]
    assert [e["version"] for e in events] == [f"run-{i}" for i in range(5)]
    assert events[3]["pruned"] == ["run-0"] and events[4]["pruned"] == ["run-1"]


def test_rollback_restores_an_earlier_complete_set(tmp_path):
    out = tmp_path / "published"
    for i in range(3):
        do_publish(make_warehouse(tmp_path / "wh.duckdb", variant=i), out, f"run-{i}")
    before = {v: sha(out / "versions" / v / "fct_cohort_retention.parquet") for v in ("run-0", "run-1", "run-2")}
    assert pub.rollback(out)["version"] == "run-1"
    assert pub.current_version(out) == "run-1" and assert_complete_set(out)["run_id"] == "run-1"
    assert sha(out / "fct_cohort_retention.parquet") == before["run-1"]
    assert pub.rollback(out)["version"] == "run-0"
    with pytest.raises(pub.PublishError, match="no version older"):
        pub.rollback(out)
    assert pub.rollback(out, "run-2")["version"] == "run-2"
    assert sha(out / "fct_cohort_retention.parquet") == before["run-2"]
    for bad in ("../../etc", "nope"):
        with pytest.raises(pub.PublishError):
            pub.rollback(out, bad)
    # a damaged version is refused, the live set stays
    (out / "versions" / "run-1" / "fct_churn_period.parquet").write_bytes(b"garbage")
    with pytest.raises(pub.PublishError, match="damaged"):
        pub.rollback(out, "run-1")
    assert pub.current_version(out) == "run-2"


def test_rollback_cli(tmp_path, monkeypatch, capsys):
    from orchestration.settings import get_settings

    monkeypatch.setenv("CHURN_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()
    out = tmp_path / "data" / "published"
    for i in range(2):
        do_publish(make_warehouse(tmp_path / "wh.duckdb", variant=i), out, f"run-{i}")
    assert pub.main(["list"]) == 0
    listing = capsys.readouterr().out.splitlines()
    assert listing[0].startswith("* run-1") and listing[1].startswith("  run-0")
    assert pub.main(["rollback"]) == 0
    assert "version run-0" in capsys.readouterr().out and pub.current_version(out) == "run-0"
    assert pub.main(["verify"]) == 0
    assert pub.main(["rollback", "../x"]) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("error: version '../x' is not a valid version name")
    get_settings.cache_clear()


def test_a_failing_publish_leaves_the_live_set_and_no_debris(tmp_path):
    out = tmp_path / "published"
    wh = make_warehouse(tmp_path / "wh.duckdb")
    do_publish(wh, out, "good")
    before = {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()}
    con = duckdb.connect(str(wh))
    broken = {**PUBLISHED_TABLES, "zz_missing": "marts.does_not_exist"}
    with pytest.raises(duckdb.CatalogException):
        pub.publish(con, broken, out, run_id="bad")
    con.close()
    assert {p.name: p.read_bytes() for p in out.iterdir() if p.is_file()} == before
    assert pub.current_version(out) == "good" and sorted(p.name for p in (out / "versions").iterdir()) == ["good"]
    assert not list(out.glob(".staging-*"))


def test_leftovers_of_an_interrupted_publish_are_cleaned_up(tmp_path):
    out = tmp_path / "published"
    wh = make_warehouse(tmp_path / "wh.duckdb")
    do_publish(wh, out, "one")
    (out / ".staging-dead").mkdir()
    (out / ".staging-dead" / "fct_churn_period.parquet").write_bytes(b"half")
    os.symlink("versions/nowhere", out / ".link-dead")
    (out / "versions" / "half-written").mkdir()  # a version folder without a manifest
    do_publish(wh, out, "two")
    assert not (out / ".staging-dead").exists() and not os.path.lexists(out / ".link-dead")
    assert sorted(p.name for p in (out / "versions").iterdir()) == ["one", "two"]


def test_same_data_gives_byte_identical_parquet(tmp_path):
    out = tmp_path / "published"
    wh = make_warehouse(tmp_path / "wh.duckdb")
    a = do_publish(wh, out, "a")
    b = do_publish(wh, out, "b")
    assert [t["sha256"] for t in a["tables"]] == [t["sha256"] for t in b["tables"]]


def test_a_set_published_as_plain_files_is_adopted_as_a_version(tmp_path):
    out = tmp_path / "published"
    out.mkdir()
    # the layout before versions: plain files and a manifest
    (out / "fct_churn_period.parquet").write_bytes(b"PAR1 legacy")
    (out / "churn.duckdb").write_bytes(b"legacy db")
    legacy = {"run_id": "old-run", "duckdb_file": "churn.duckdb", "duckdb_sha256": hashlib.sha256(b"legacy db").hexdigest(),
              "tables": [{"name": "fct_churn_period", "rows": 1, "parquet": "fct_churn_period.parquet",
                          "sha256": hashlib.sha256(b"PAR1 legacy").hexdigest()}]}
    (out / "manifest.json").write_text(json.dumps(legacy))
    do_publish(make_warehouse(tmp_path / "wh.duckdb"), out, "new-run")
    assert sorted(p.name for p in (out / "versions").iterdir()) == ["new-run", "old-run"]
    kept = out / "versions" / "old-run"
    assert (kept / "fct_churn_period.parquet").read_bytes() == b"PAR1 legacy"
    assert json.loads((kept / "manifest.json").read_text())["run_id"] == "old-run"
    assert pub.current_version(out) == "new-run" and (out / "fct_churn_period.parquet").is_symlink()


def test_small_segments_are_suppressed_at_publish_and_exact_in_the_warehouse(tmp_path):
    wh, out = make_warehouse(tmp_path / "wh.duckdb"), tmp_path / "published"
    manifest = do_publish(wh, out, "s", min_segment_customers=10)
    seg = pd.read_parquet(out / "fct_churn_segment_period.parquet")
    seg["key"] = list(zip(seg.period_start.astype(str), seg.segment_dimension, seg.segment_value))
    assert set(seg.loc[seg.is_suppressed == 1, "key"]) == SUPPRESSED_SEGMENTS
    hidden, shown = seg[seg.is_suppressed == 1], seg[seg.is_suppressed == 0]
    assert hidden[FIGURES].isna().all().all()
    assert (hidden.period_end.notna() & hidden.is_small_segment.notna()).all()
    exact = {(p, d, v): (s, n, r, c, t) for p, d, v, s, n, r, c, t in SEGMENTS}
    for row in shown.itertuples():
        assert (row.customers_start, row.customers_new, row.customers_reactivated, row.customers_churned,
                row.customers_transient) == exact[row.key]
    risk = pd.read_parquet(out / "churn_risk_by_segment.parquet")
    assert set(zip(risk.segment_dimension[risk.is_suppressed == 1], risk.segment_value[risk.is_suppressed == 1])) == SUPPRESSED_RISK
    assert risk.loc[risk.is_suppressed == 1, ["customers", "mean_churn_probability", "expected_churners",
                                              "revenue_at_risk", "high_risk_customers"]].isna().all().all()
    assert risk.loc[risk.segment_value == "us", "customers"].item() == 150
    assert manifest["suppression"] == {"min_segment_customers": 10,
                                       "rows_suppressed": {"fct_churn_segment_period": 6, "churn_risk_by_segment": 2}}
    # the DuckDB copy is suppressed too; the warehouse keeps the exact figures
    con = duckdb.connect(str(out / "churn.duckdb"), read_only=True)
    assert con.execute("select count(*) from fct_churn_segment_period where is_suppressed = 1 and customers_start is null"
                       ).fetchone()[0] == 6
    con.close()
    con = duckdb.connect(str(wh), read_only=True)
    assert con.execute("select customers_start from marts.fct_churn_segment_period where segment_value = 'fr' "
                       "and period_start = date '2024-01-01'").fetchone() == (6,)
    con.close()


def test_suppression_can_be_turned_off(tmp_path):
    out = tmp_path / "published"
    do_publish(make_warehouse(tmp_path / "wh.duckdb"), out, "s", min_segment_customers=0)
    seg = pd.read_parquet(out / "fct_churn_segment_period.parquet")
    assert (seg.is_suppressed == 0).all() and seg.customers_start.notna().all()


# ----------------------------------------------------------------------------- the Dagster asset


@pytest.fixture
def publish_env(pipeline_env, tmp_path):
    settings = pipeline_env(CHURN_SOURCE="synthetic")
    make_warehouse(settings.warehouse_path)
    return settings


def _materialize(settings, extra=()):
    return dg.materialize([*extra, published_churn_tables],
                          resources={"warehouse": WarehouseResource(path=str(settings.warehouse_path))},
                          instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)


def test_publish_step_retries_a_transient_error(publish_env, monkeypatch):
    import orchestration.assets.publish as asset_module

    calls = []
    real = asset_module.publish

    def flaky(*args, **kwargs):
        calls.append(1)
        if len(calls) == 1:
            raise OSError(errno.EBUSY, "Device or resource busy", "churn.duckdb")
        return real(*args, **kwargs)

    monkeypatch.setattr(asset_module, "publish", flaky)
    result = _materialize(publish_env)
    assert result.success and len(calls) == 2
    types = [e.event_type_value for e in result.all_events]
    assert "STEP_UP_FOR_RETRY" in types and "STEP_RESTARTED" in types
    assert_complete_set(publish_env.published_dir)


def test_publish_step_does_not_retry_a_real_error(publish_env, monkeypatch):
    import orchestration.assets.publish as asset_module

    calls = []

    def broken(*args, **kwargs):
        calls.append(1)
        raise ValueError("bad relation")

    monkeypatch.setattr(asset_module, "publish", broken)
    result = _materialize(publish_env)
    assert not result.success and len(calls) == 1
    failure = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"][0]
    assert failure.event_specific_data.user_failure_data.description.startswith("publish failed (ValueError: bad relation)")
    assert not publish_env.published_dir.exists() or not (publish_env.published_dir / "manifest.json").exists()


def test_a_failed_check_in_the_run_never_publishes(publish_env):
    # a stand-in for an upstream asset whose (non-blocking) check fails: the publish step still starts,
    # and must refuse
    @dg.asset(key=["marts", "fct_churn_period"])
    def upstream():
        return None

    @dg.asset_check(asset=upstream, name="always_fails", blocking=False)
    def always_fails():
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR, description="bad figures")

    result = _materialize(publish_env, extra=(upstream, always_fails))
    assert not result.success
    failure = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"][0]
    assert failure.step_key == "published_churn_tables"
    assert "not publishing: check(s) failed in this run: always_fails on marts/fct_churn_period" in \
        failure.event_specific_data.user_failure_data.description
    assert not (publish_env.published_dir / "manifest.json").exists()


def test_published_paths_stay_inside_the_data_dir(pipeline_env, tmp_path):
    from orchestration.settings import SettingsError

    settings = pipeline_env(CHURN_SOURCE="synthetic")
    settings.data_dir.mkdir(parents=True)
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    os.symlink(elsewhere, settings.data_dir / "published")
    with pytest.raises(SettingsError, match="outside CHURN_DATA_DIR"):
        settings.check_paths()
    make_warehouse(settings.warehouse_path)
    result = _materialize(settings)
    assert not result.success and not any(elsewhere.iterdir())
    # a configuration error is not retried
    assert "STEP_UP_FOR_RETRY" not in [e.event_type_value for e in result.all_events]


def test_as_of_in_publish_info_and_manifest(tmp_path):
    out = tmp_path / "published"
    manifest = do_publish(make_warehouse(tmp_path / "wh.duckdb"), out, "x")
    assert manifest["as_of_date"] == "2024-02-29"
    con = duckdb.connect(str(out / "churn.duckdb"), read_only=True)
    assert con.execute("select as_of_date from publish_info").fetchone() == ("2024-02-29",)
    con.close()
    assert date.fromisoformat(manifest["published_at"][:10])


def test_a_copied_folder_in_place_of_the_current_link_is_a_clear_error_and_changes_nothing(tmp_path):
    # `cp -r` of a published folder turns every symlink into a copy: `current` becomes a folder
    wh = make_warehouse(tmp_path / "wh.duckdb")
    do_publish(wh, tmp_path / "orig", "one")
    import shutil

    out = tmp_path / "copied"
    shutil.copytree(tmp_path / "orig", out, symlinks=False)
    assert (out / "current").is_dir() and not (out / "current").is_symlink()
    before = sorted(str(p.relative_to(out)) for p in out.rglob("*"))
    con = duckdb.connect(str(wh))
    with pytest.raises(pub.PublishError) as err:
        pub.publish(con, PUBLISHED_TABLES, out, run_id="two")
    con.close()
    message = str(err.value)
    assert "\n" not in message and str(out / "current") in message and "is a folder" in message and "mv " in message
    # nothing was adopted, staged or switched
    assert sorted(str(p.relative_to(out)) for p in out.rglob("*")) == before
