"""The job for the whole DAG and its daily schedule (cron and timezone from settings)."""

from __future__ import annotations

import dagster as dg

from orchestration.partitions import previous_day_key
from orchestration.settings import get_settings

# Every run of the job carries this tag; DAGSTER_HOME/dagster.yaml limits runs with it to one at a
# time (orchestration.run.INSTANCE_YAML), so a backfill, the schedule and the sensor queue instead
# of meeting on the warehouse's single-writer lock.
WAREHOUSE_TAG = {"churn/warehouse": "private"}

churn_pipeline_job = dg.define_asset_job(
    name="churn_pipeline",
    selection=dg.AssetSelection.all(),
    description="Ingest -> dbt -> validate -> train -> score -> publish, on the configured source.",
    # in-process: DuckDB allows one writer process, so steps share this process and run in order
    executor_def=dg.in_process_executor,
    tags=WAREHOUSE_TAG,
)


def daily_schedule() -> dg.ScheduleDefinition:
    settings = get_settings()

    @dg.schedule(
        name="churn_pipeline_daily",
        job=churn_pipeline_job,
        cron_schedule=settings.schedule_cron,
        execution_timezone=settings.schedule_timezone,
        default_status=dg.DefaultScheduleStatus.STOPPED,
        description="Runs churn_pipeline for the previous day's partition (a tick missed is its own run key).",
    )
    def _daily(context: dg.ScheduleEvaluationContext) -> dg.RunRequest:
        key = previous_day_key(context.scheduled_execution_time)
        return dg.RunRequest(run_key=key, partition_key=key)

    return _daily
