"""Publish asset: the BI-facing Parquet files and DuckDB file, as a new version switched in atomically."""


import dagster as dg

from orchestration.publish import is_transient, publish
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


@dg.asset(
    key=["published_churn_tables"],
    group_name="publish",
    kinds={"parquet", "duckdb"},
    owners=["team:data-engineering"],
    deps=[dg.AssetKey(["marts", "fct_churn_period"]), dg.AssetKey(["marts", "fct_churn_segment_period"]),
          dg.AssetKey(["marts", "fct_cohort_retention"]),
          dg.AssetKey(["customer_churn_scores"]), dg.AssetKey(["churn_risk_by_segment"])],
    retry_policy=PUBLISH_RETRY,
    description=(
        "data/published/<table>.parquet and data/published/churn.duckdb (DuckDB 1.4 storage "
        "format) with fct_churn_period, fct_churn_segment_period, fct_cohort_retention, customer_churn_scores and "
        "churn_risk_by_segment, plus manifest.json. Each publish is a complete version under "
        "published/versions/<run id>/, made live by one atomic symlink switch; the last versions are kept "
        "for rollback (python -m orchestration.publish rollback). Small segments are suppressed. "
        "Never runs after a failed check; the private warehouse is never exposed to BI tools."
    ),
)
def published_churn_tables(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
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
            )
    except Exception as exc:
        if is_transient(exc):
            context.log.warning(f"publish hit a transient error, will retry: {str(exc).splitlines()[0]}")
            raise
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        raise dg.Failure(description=f"publish failed ({type(exc).__name__}: {first}); the published set was left as it was",
                         allow_retries=False) from exc
    return dg.MaterializeResult(
        metadata={
            "folder": dg.MetadataValue.path(str(settings.published_dir)),
            "version": manifest["version"],
            "as_of_date": str(as_of[0]),
            "rows_suppressed": dg.MetadataValue.json(manifest["suppression"]["rows_suppressed"]),
            **{f"rows_{t['name']}": t["rows"] for t in manifest["tables"]},
        }
    )
