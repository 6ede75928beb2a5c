"""The landing-folder sensor: a run when files are new or changed, not for touches or half-copied files."""

from __future__ import annotations

import json
from datetime import datetime, timedelta, timezone
import os
import time

import dagster as dg

from orchestration.sensors import landing_folder_sensor


def _evaluate(cursor=None):
    context = dg.build_sensor_context(cursor=cursor, instance=dg.DagsterInstance.ephemeral())
    result = landing_folder_sensor(context)
    return result, context.cursor


def _age(path, seconds=3600):
    old = time.time() - seconds
    os.utime(path, (old, old))


def test_sensor_is_off_by_default_and_registered():
    from orchestration.definitions import defs

    sensor = defs.resolve_sensor_def("landing_folder_sensor")
    assert sensor.default_status == dg.DefaultSensorStatus.STOPPED
    assert sensor.job_name == "churn_pipeline"


def test_sensor_requests_runs_for_new_and_changed_files_only(pipeline_env, tmp_path):
    landing = tmp_path / "landing"
    (landing / "orders").mkdir(parents=True)
    (landing / "customers.csv").write_text("customer_id\nC1\n")
    (landing / "orders" / "part-1.csv").write_text("order_id,customer_id,order_date,amount\no1,C1,2024-01-01,1\n")
    for p in landing.rglob("*.csv"):
        _age(p)
    pipeline_env(CHURN_SOURCE="folder", CHURN_LANDING_DIR=str(landing), CHURN_SENSOR_SETTLE_SECONDS="30")

    first, cursor = _evaluate()
    assert isinstance(first, dg.RunRequest) and "customers.csv" in first.tags["churn/landing_changes"]
    # the newest data-day partition of the dbt assets (yesterday): the run recomputes what the files touch
    assert first.partition_key == (datetime.now(timezone.utc).date() - timedelta(days=1)).isoformat()

    same, cursor2 = _evaluate(cursor)
    assert isinstance(same, dg.SkipReason) and "no new or changed" in same.skip_message

    # touching a file (same bytes, new mtime) is not a change
    _age(landing / "customers.csv", 1800)
    touched, cursor3 = _evaluate(cursor2)
    assert isinstance(touched, dg.SkipReason) and "no new or changed" in touched.skip_message

    # a new part that is still being written: wait for it to settle
    new = landing / "orders" / "part-2.csv"
    new.write_text("order_id,customer_id,order_date,amount\no2,C1,2024-01-02,1\n")
    busy, cursor4 = _evaluate(cursor3)
    assert isinstance(busy, dg.SkipReason) and "settle" in busy.skip_message and cursor4 == cursor3
    _age(new)
    run, cursor5 = _evaluate(cursor4)
    assert isinstance(run, dg.RunRequest) and run.tags["churn/landing_changes"] == "orders/part-2.csv"
    assert set(json.loads(cursor5)["files"]) == {"customers.csv", "orders/part-1.csv", "orders/part-2.csv"}

    # a changed file with the same name
    (landing / "orders" / "part-1.csv").write_text("order_id,customer_id,order_date,amount\no1,C1,2024-01-01,99\n")
    _age(landing / "orders" / "part-1.csv")
    changed, _ = _evaluate(cursor5)
    assert isinstance(changed, dg.RunRequest) and changed.tags["churn/landing_changes"] == "orders/part-1.csv"
    assert changed.run_key != run.run_key


def test_sensor_skips_other_sources(pipeline_env):
    pipeline_env(CHURN_SOURCE="synthetic")
    result, _ = _evaluate()
    assert isinstance(result, dg.SkipReason) and "only watches" in result.skip_message
