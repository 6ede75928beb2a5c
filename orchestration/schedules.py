"""The job for the whole DAG and its daily schedule (cron and timezone from settings)."""

from __future__ import annotations

import dagster as dg

from orchestration.settings import get_settings

churn_pipeline_job = dg.define_asset_job(
    name="churn_pipeline",
    selection=dg.AssetSelection.all(),
    description="Ingest -> dbt -> validate -> train -> score -> publish, on the configured source.",
    # in-process: DuckDB allows one writer process, so steps share this process and run in order
    executor_def=dg.in_process_executor,
)


def daily_schedule() -> dg.ScheduleDefinition:
    settings = get_settings()
    return dg.ScheduleDefinition(
        name="churn_pipeline_daily",
        job=churn_pipeline_job,
        cron_schedule=settings.schedule_cron,
        execution_timezone=settings.schedule_timezone,
        default_status=dg.DefaultScheduleStatus.STOPPED,
    )
