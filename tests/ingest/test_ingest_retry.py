"""Retries: a raw-table step waits out another process's lock on the warehouse; bad input is not retried."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import dagster as dg

from orchestration.assets.ingest import raw_assets
from orchestration.resources import WarehouseResource

CORPUS = Path(__file__).resolve().parents[1] / "data" / "bad_inputs"
RAW_CUSTOMERS = next(a for a in raw_assets if a.key == dg.AssetKey(["raw", "customers"]))


def _materialize(settings):
    return dg.materialize([RAW_CUSTOMERS], resources={"warehouse": WarehouseResource(path=str(settings.warehouse_path))},
                          instance=dg.DagsterInstance.ephemeral(), raise_on_error=False)


def test_a_lock_held_by_another_process_is_retried(pipeline_env, tmp_path):
    landing = tmp_path / "landing"
    shutil.copytree(CORPUS / "extra_column", landing)
    settings = pipeline_env(CHURN_SOURCE="folder", CHURN_LANDING_DIR=str(landing))
    settings.warehouse_path.parent.mkdir(parents=True)
    holder = subprocess.Popen(
        [sys.executable, "-c", "import duckdb, sys, time; c = duckdb.connect(sys.argv[1]); print('locked', flush=True); "
         "time.sleep(2.5)", str(settings.warehouse_path)], stdout=subprocess.PIPE, text=True)
    assert holder.stdout.readline().strip() == "locked"
    result = _materialize(settings)
    holder.wait(timeout=30)
    types = [e.event_type_value for e in result.all_events]
    assert result.success and "STEP_UP_FOR_RETRY" in types
    failure = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"]
    assert failure == []  # the lock error was a retried attempt, not a failure of the step


def test_bad_input_is_not_retried_and_reports_one_line(pipeline_env, tmp_path):
    landing = tmp_path / "landing"
    shutil.copytree(CORPUS / "renamed_column", landing)
    settings = pipeline_env(CHURN_SOURCE="folder", CHURN_LANDING_DIR=str(landing))
    result = _materialize(settings)
    types = [e.event_type_value for e in result.all_events]
    assert not result.success and "STEP_UP_FOR_RETRY" not in types
    failure = [e for e in result.all_events if e.event_type_value == "STEP_FAILURE"][0]
    assert failure.event_specific_data.user_failure_data.description == (
        f"{landing / 'customers.csv'}: required column 'customer_id' is missing but 'customerid' looks like it; "
        "rename 'customerid' to 'customer_id' (the customers contract)")
