"""The single Definitions object (loaded by workspace.yaml)."""

from __future__ import annotations

import dagster as dg

from orchestration.assets.dbt import churn_dbt_models
from orchestration.assets.ingest import landing, raw_assets
from orchestration.assets.ml import churn_model, churn_risk_by_segment, customer_churn_scores
from orchestration.assets.publish import published_churn_tables
from orchestration.assets.report import churn_report
from orchestration.checks.gx_checks import all_checks
from orchestration.checks.model_checks import model_checks
from orchestration.checks.quarantine_checks import quarantine_checks
from orchestration.resources import build_resources
from orchestration.schedules import churn_pipeline_job, daily_schedule
from orchestration.sensors import landing_folder_sensor

defs = dg.Definitions(
    assets=[landing, *raw_assets, churn_dbt_models, churn_model, customer_churn_scores, churn_risk_by_segment,
            published_churn_tables, churn_report],
    asset_checks=[*all_checks, *quarantine_checks, *model_checks],
    jobs=[churn_pipeline_job],
    schedules=[daily_schedule()],
    sensors=[landing_folder_sensor],
    resources=build_resources(),
    executor=dg.in_process_executor,
)
