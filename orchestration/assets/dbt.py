"""dbt assets: staging, the SCD2 snapshot, spans, period facts and ML features."""


import os
from collections.abc import Mapping
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from orchestration.dbt_args import dbt_build_args, dbt_env
from orchestration.project import dbt_project
from orchestration.settings import get_settings

_GROUPS = {"staging": "staging", "intermediate": "staging", "marts": "marts", "ml": "ml"}


class ChurnDbtTranslator(DagsterDbtTranslator):
    """One override: groups by folder, kinds, owners; sources keep their meta asset keys."""

    def get_asset_spec(self, manifest: Mapping[str, Any], unique_id: str, project: DbtProject | None) -> dg.AssetSpec:
        spec = super().get_asset_spec(manifest, unique_id, project)
        props = self.get_resource_props(manifest, unique_id)
        if props.get("resource_type") == "source":
            return spec
        fqn = props.get("fqn", [])
        folder = fqn[1] if len(fqn) > 2 else ""
        group = "marts" if props.get("resource_type") == "snapshot" else _GROUPS.get(folder, "marts")
        return spec.replace_attributes(
            group_name=group,
            kinds={"dbt", "duckdb"},
            owners=["team:analytics-engineering"],
        )


@dbt_assets(
    manifest=dbt_project().manifest_path,
    project=dbt_project(),
    dagster_dbt_translator=ChurnDbtTranslator(),
    name="churn_dbt_models",
)
def churn_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    """Runs `dbt build` (models, the snapshot and the dbt tests, which become asset checks)."""
    settings = get_settings()
    # the dbt subprocess inherits this process's environment; profiles.yml reads the path from it
    os.environ.update(dbt_env(settings))
    yield from dbt.cli(dbt_build_args(settings), context=context).stream()
