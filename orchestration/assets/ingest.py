"""Ingest assets: the landing folder, then one raw table per contract table."""


import dagster as dg

from orchestration.ingest.contract import TABLES
from orchestration.ingest.landing import prepare_landing
from orchestration.ingest.loader import IngestError, duplicates_sample, load_table, quarantine_sample
from orchestration.publish import is_transient
from orchestration.resources import WarehouseResource
from orchestration.settings import SettingsError, get_settings

OWNERS = ["team:data-engineering"]

# Retried: another process holding the warehouse's DuckDB lock (a dbt or notebook session, a
# second run) or a busy file. A file that breaks the contract is not retried: the same bytes
# would fail again, so the run stops at once with the one-line message.
INGEST_RETRY = dg.RetryPolicy(max_retries=3, delay=2, backoff=dg.Backoff.EXPONENTIAL, jitter=dg.Jitter.PLUS_MINUS)


def _stop(exc: Exception) -> dg.Failure:
    return dg.Failure(description=str(exc), allow_retries=False)


@dg.asset(
    key=["landing"],
    group_name="ingest",
    kinds={"parquet", "csv"},
    owners=OWNERS,
    description=(
        "Landing folder following the raw CRM contract. For cdnow/telco/synthetic the source "
        "adapter writes it; for source=folder it is the user's folder, checked against the contract."
    ),
)
def landing(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    settings = get_settings()
    try:
        settings.check_paths()
        folder, files = prepare_landing(settings)
    except (IngestError, SettingsError) as exc:
        raise _stop(exc) from None
    context.log.info(f"landing folder {folder}: {files}")
    return dg.MaterializeResult(
        metadata={
            "source": settings.source,
            "folder": dg.MetadataValue.path(str(folder)),
            **{f"files_{t}": n for t, n in files.items()},
        }
    )


def build_raw_asset(table_name: str) -> dg.AssetsDefinition:
    table = TABLES[table_name]
    deps = [dg.AssetKey(["landing"])]
    if table.references_customer:
        # orders for unknown customers are quarantined, so customers load first
        deps.append(dg.AssetKey(["raw", "customers"]))

    @dg.asset(
        key=["raw", table_name],
        group_name="ingest",
        # a DuckDB table, validated by a blocking Great Expectations suite (orchestration/checks/gx_checks.py)
        kinds={"duckdb", "great_expectations"},
        owners=OWNERS,
        deps=deps,
        retry_policy=INGEST_RETRY,
        description=(
            f"raw.{table_name}: {table.description} Typed per the contract, with _source_file, "
            "_row_number and _loaded_at. Rows with bad values (unparsable or non-ISO dates, bad numbers, out of "
            "range, future events, end before start, unknown customers) go to raw.quarantine with a reason; "
            "duplicates resolve to the latest version (raw.duplicates lists the dropped rows). Every file "
            "version is recorded in raw.landing_manifest; unchanged inputs are not reloaded, and when only new "
            "files arrived only they are read and appended (metadata load_mode: full / append / unchanged)."
        ),
    )
    def _raw(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        settings = get_settings()
        try:
            with warehouse.connect() as con:
                result = load_table(
                    con, settings.resolved_landing_dir, table_name,
                    future_tolerance_days=settings.future_date_tolerance_days,
                    max_money_value=settings.max_money_value,
                )
                sample = quarantine_sample(con, table_name)
                dupes = duplicates_sample(con, table_name)
        except IngestError as exc:
            raise _stop(exc) from None
        except Exception as exc:
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            if is_transient(exc):
                context.log.warning(f"raw.{table_name}: transient error, will retry: {first}")
                raise
            raise dg.Failure(description=f"raw.{table_name}: {type(exc).__name__}: {first}", allow_retries=False) from exc
        if result.rows_quarantined:
            context.log.warning(
                f"{table_name}: {result.rows_quarantined} of {result.rows_read} rows quarantined: {result.quarantine_reasons}"
            )
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": result.rows_loaded,
                "status": result.status,
                # full = rebuilt from every file; append = only the new files were read; unchanged = nothing to do
                "load_mode": result.load_mode,
                "rows_appended": result.rows_appended,
                "rows_read": result.rows_read,
                "rows_quarantined": result.rows_quarantined,
                "quarantine_share": round(result.quarantine_share, 6),
                "rows_duplicate": result.rows_duplicate,
                "conflicting_keys": result.conflicting_keys,
                "present": result.present,
                "files": dg.MetadataValue.json(result.files),
                "new_files": dg.MetadataValue.json(result.new_files),
                "changed_files": dg.MetadataValue.json(result.changed_files),
                "removed_files": dg.MetadataValue.json(result.removed_files),
                "identical_files": dg.MetadataValue.json(result.identical_files),
                "extra_columns": dg.MetadataValue.json(result.extra_columns),
                "quarantine_reasons": dg.MetadataValue.json(result.quarantine_reasons),
                "quarantine_sample": dg.MetadataValue.json(sample),
                "duplicates_sample": dg.MetadataValue.json(dupes),
            }
        )

    return _raw


raw_assets = [build_raw_asset(name) for name in TABLES]
