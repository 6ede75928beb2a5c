"""dbt assets: staging, the SCD2 snapshot, spans, period facts and ML features."""


import os
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import dagster as dg
from dagster_dbt import DagsterDbtTranslator, DbtCliResource, DbtProject, dbt_assets

from orchestration.dbt_args import dbt_build_args, dbt_env
from orchestration.partitions import data_day_partitions, recompute_from
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
    # a partition is a data day (orchestration/partitions.py); a backfill of any range of days is
    # one run and one `dbt build` recomputing from its first day, so partitions never race
    partitions_def=data_day_partitions(),
    backfill_policy=dg.BackfillPolicy.single_run(),
)
def churn_dbt_models(context: dg.AssetExecutionContext, dbt: DbtCliResource):
    """Runs `dbt build` (models, the snapshot and the dbt tests, which become asset checks).

    Partitioned by data day: a run for days D1..Dn recomputes every customer period that data
    from D1 on can change (an unpartitioned run: what the newly loaded rows can change)."""
    settings = get_settings()
    start = recompute_from(context)
    if start is not None:
        context.log.info(f"partition(s) {context.partition_time_window}: recomputing the periods data from {start} can change")
    # the dbt subprocess inherits this process's environment; profiles.yml reads the path from it
    os.environ.update(dbt_env(settings, recompute_from=start))
    # dbt holds the warehouse's write lock until it exits, so the facts are read (for the
    # headline metadata and the trend chart) only after the stream ends
    invocation = dbt.cli(dbt_build_args(settings), context=context)
    events = list(invocation.stream())
    keep_partial_parse(Path(invocation.target_path), dbt_project().project_dir / "target")
    prune_invocation_dirs(Path(invocation.target_path).parent)
    import duckdb

    try:
        con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    except duckdb.Error:  # dbt failed before creating the file; the events say why
        yield from events
        return
    try:
        tables = _base_tables(con)
        for event in events:
            if isinstance(event, dg.Output):
                extra = _row_count(con, event.output_name) if event.output_name in tables else {}
                if event.output_name == "marts__fct_churn_period":
                    extra.update(_churn_facts_metadata(con))
                event = event.with_metadata({**event.metadata, **extra})
            yield event
    finally:
        con.close()


def keep_partial_parse(invocation_target: Path, project_target: Path) -> bool:
    """Make this run's dbt parse state the one the next run starts from.

    dagster-dbt seeds each invocation with the project's target/partial_parse.msgpack, which
    `dbt parse` wrote without the run's --vars, so every run parsed the whole project again
    (~5 s at 1M customers: dbt checks vars, profile and file hashes before reusing a parse).
    The file is swapped in atomically; dbt itself decides whether it still applies.
    """
    src = invocation_target / "partial_parse.msgpack"
    if not src.is_file():
        return False
    project_target.mkdir(parents=True, exist_ok=True)
    tmp = project_target / f".partial_parse.{os.getpid()}.tmp"
    shutil.copyfile(src, tmp)
    os.replace(tmp, project_target / "partial_parse.msgpack")
    return True


def prune_invocation_dirs(target: Path, keep: int = 10, prefix: str = "churn_dbt_models-") -> list[Path]:
    """Remove all but the newest ``keep`` per-invocation dbt target folders (dagster-dbt writes one
    per run, with its manifest, compiled SQL and logs; a daily schedule would add one a day forever)."""
    dirs = sorted((d for d in target.glob(prefix + "*") if d.is_dir()), key=lambda d: d.stat().st_mtime, reverse=True)
    for old in dirs[keep:]:
        shutil.rmtree(old, ignore_errors=True)
    return dirs[keep:]


def _base_tables(con) -> set[str]:
    """Output names (<schema>__<table>) of the tables: views get no row count (counting one
    re-runs its query: the activity-events view alone is ~120M rows at 1M customers)."""
    return {f"{s}__{t}" for s, t in con.execute(
        "select table_schema, table_name from information_schema.tables where table_type = 'BASE TABLE'").fetchall()}


def _row_count(con, output_name: str) -> dict[str, Any]:
    """dagster/row_count for a dbt output named <schema>__<table> (names come from dbt, not users)."""
    schema, _, table = output_name.partition("__")
    try:
        n = con.execute(f'select count(*) from "{schema}"."{table}"').fetchall()[0][0]
    except Exception:  # noqa: BLE001 - views over missing sources etc.: no count rather than a failed step
        return {}
    return {"dagster/row_count": int(n)}


def _churn_facts_metadata(con) -> dict[str, Any]:
    """Numeric headline figures (recorded every run, so the UI plots their history) and a trend chart."""
    from orchestration.report import churn_trend_png

    period = con.sql("select * from marts.fct_churn_period order by period_start").df()
    if period.empty:
        return {}
    last = period.iloc[-1]
    meta: dict[str, Any] = {
        "last_period_start": str(last["period_start"])[:10],
        "last_period_churn_rate": float(last["churn_rate"]) if last["churn_rate"] == last["churn_rate"] else 0.0,
        "last_period_customers_start": int(last["customers_start"]),
        "periods": len(period),
        "churn_trend": dg.MetadataValue.md(f"![churn trend]({churn_trend_png(period)})"),
    }
    if last["nrr"] is not None and last["nrr"] == last["nrr"]:
        meta["last_period_nrr"] = float(last["nrr"])
    return meta
