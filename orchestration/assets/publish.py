"""Publish asset: the BI-facing Parquet files and DuckDB file, as a new version switched in atomically."""


from collections.abc import Iterator
from pathlib import Path

import dagster as dg
import duckdb

from orchestration.publish import is_transient, publish
from orchestration.published_columns import load_docs
from orchestration.resources import WarehouseResource
from orchestration.settings import SettingsError, get_settings

# published name -> warehouse relation (also the upstream asset key: schema / table)
PUBLISHED_TABLES: dict[str, str] = {
    "fct_churn_period": "marts.fct_churn_period",
    "fct_churn_segment_period": "marts.fct_churn_segment_period",
    "fct_cohort_retention": "marts.fct_cohort_retention",
    "customer_churn_scores": "ml.customer_churn_scores",
    "churn_risk_by_segment": "ml.churn_risk_by_segment",
}

# Retried: a busy file or a lock held by another process (a DuckDB lock on the warehouse, the
# publish lock, EBUSY/EAGAIN on the filesystem). Bad data, a failed check or a bug is not retried
# (dg.Failure(allow_retries=False)), so a real error is reported once, quickly.
PUBLISH_RETRY = dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def failed_checks(context: dg.AssetExecutionContext) -> list[str]:
    """ERROR-severity check failures recorded so far in this run (blocking or not)."""
    records = context.instance.get_records_for_run(
        context.run_id, of_type=dg.DagsterEventType.ASSET_CHECK_EVALUATION
    ).records
    failed = []
    for r in records:
        data = r.event_log_entry.dagster_event.event_specific_data  # type: ignore[union-attr]
        if not data.passed and data.severity == dg.AssetCheckSeverity.ERROR:
            failed.append(f"{data.check_name} on {data.asset_key.to_user_string()}")
    return failed


def _published_spec(name: str, relation: str) -> dg.AssetSpec:
    doc = PUBLISHED_DOCS.get(name)
    what = doc.description if doc else relation
    return dg.AssetSpec(
        key=["published", name],
        deps=[UPSTREAM[name]],
        group_name="publish",
        kinds={"parquet", "duckdb"},
        owners=["team:data-engineering"],
        description=(
            f"{what} Published for BI tools as data/published/{name}.parquet and as table {name} in "
            "data/published/churn.duckdb (DuckDB 1.4 storage format). Column definitions are in the "
            "Columns tab (from dbt YAML)."
        ),
    )


PUBLISHED_DOCS = load_docs()
# the asset each published table is read from (dbt marts are keyed schema/table; ML tables by name)
UPSTREAM: dict[str, dg.AssetKey] = {
    name: dg.AssetKey(relation.split(".")) if relation.startswith("marts.") else dg.AssetKey([relation.split(".")[-1]])
    for name, relation in PUBLISHED_TABLES.items()
}


@dg.multi_asset(
    name="published_churn_tables",
    specs=[_published_spec(name, relation) for name, relation in PUBLISHED_TABLES.items()],
    retry_policy=PUBLISH_RETRY,
    description=(
        "Publishes every table as one complete version under published/versions/<run id>/, made live by one "
        "atomic symlink switch; the last versions are kept for rollback (python -m orchestration.publish "
        "rollback). Small segments are suppressed. Never runs after a failed check; the private warehouse "
        "is never exposed to BI tools."
    ),
)
def published_churn_tables(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> Iterator[dg.MaterializeResult]:
    settings = get_settings()
    try:
        settings.check_paths()
    except SettingsError as exc:
        raise dg.Failure(description=str(exc), allow_retries=False) from None
    failed = failed_checks(context)
    if failed:
        raise dg.Failure(
            description=f"not publishing: check(s) failed in this run: {', '.join(failed)}; the published set was left as it was",
            allow_retries=False,
        )
    try:
        with warehouse.connect() as con:
            as_of = con.execute("select as_of_date, churn_definition from intermediate.int_run_parameters").fetchone()
            manifest = publish(
                con,
                PUBLISHED_TABLES,
                settings.published_dir,
                run_id=context.run_id,
                extra_manifest={"source": settings.source, "as_of_date": str(as_of[0]), "churn_definition": as_of[1],
                                "period_grain": settings.period_grain},
                keep_versions=settings.publish_keep_versions,
                min_segment_customers=settings.publish_min_segment_customers,
                postgres_url=settings.publish_postgres_url,
                postgres_schema=settings.publish_postgres_schema,
            )
    except Exception as exc:
        if is_transient(exc):
            context.log.warning(f"publish hit a transient error, will retry: {str(exc).splitlines()[0]}")
            raise
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise dg.Failure(description=f"publish failed ({type(exc).__name__}: {first}); the published set was left as it was",
                         allow_retries=False) from exc
    version_dir = settings.published_dir / "versions" / manifest["version"]
    common = {
        "folder": dg.MetadataValue.path(str(settings.published_dir)),
        "version": manifest["version"],
        "as_of_date": str(as_of[0]),
        **({"postgres_schema": manifest["postgres"]["schema"]} if manifest.get("postgres") else {}),
    }
    for t in manifest["tables"]:
        parquet = version_dir / t["parquet"]
        schema = column_schema(parquet, t["name"])
        missing = [c.name for c in schema.columns if not c.description]
        if missing:
            context.log.warning(f"{t['name']}: no description in dbt YAML for column(s) {', '.join(missing)}")
        meta = {
            **common,
            "path": dg.MetadataValue.path(str(settings.published_dir / t["parquet"])),
            "dagster/row_count": t["rows"],
            "dagster/column_schema": schema,
            "sha256": t["sha256"],
        }
        if t["name"] in manifest["suppression"]["rows_suppressed"]:
            meta["rows_suppressed"] = manifest["suppression"]["rows_suppressed"][t["name"]]
        yield dg.MaterializeResult(asset_key=["published", t["name"]], metadata=meta)


def column_schema(parquet: Path, table: str) -> dg.TableSchema:
    """The published file's columns and types, each with its one-line description from dbt YAML."""
    con = duckdb.connect()
    try:
        cols = con.execute("select column_name, column_type from (describe select * from read_parquet(?))",
                           [str(parquet)]).fetchall()
    finally:
        con.close()
    doc = PUBLISHED_DOCS.get(table)
    return dg.TableSchema(columns=[
        dg.TableColumn(name, type=str(ctype).lower(), description=(doc.columns.get(name) if doc else None))
        for name, ctype in cols
    ])
