"""Ingest assets: the landing folder, then one raw table per contract table."""


import dagster as dg

from orchestration.ingest.contract import TABLES
from orchestration.ingest.landing import prepare_landing
from orchestration.ingest.loader import load_table, quarantine_sample
from orchestration.resources import WarehouseResource
from orchestration.settings import get_settings

OWNERS = ["team:data-engineering"]


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
    folder, files = prepare_landing(settings)
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

    @dg.asset(
        key=["raw", table_name],
        group_name="ingest",
        kinds={"duckdb"},
        owners=OWNERS,
        deps=[dg.AssetKey(["landing"])],
        description=(
            f"raw.{table_name}: {table.description} Typed per the contract, with _source_file, "
            "_row_number and _loaded_at. Rows with unparsable values or future dates go to "
            "raw.quarantine with a reason. A missing optional table becomes an empty typed table."
        ),
    )
    def _raw(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
        settings = get_settings()
        with warehouse.connect() as con:
            result = load_table(con, settings.resolved_landing_dir, table_name)
            sample = quarantine_sample(con, table_name)
        if result.rows_quarantined:
            context.log.warning(f"{table_name}: {result.rows_quarantined} rows quarantined: {result.quarantine_reasons}")
        return dg.MaterializeResult(
            metadata={
                "dagster/row_count": result.rows_loaded,
                "rows_quarantined": result.rows_quarantined,
                "present": result.present,
                "files": dg.MetadataValue.json(result.files),
                "extra_columns": dg.MetadataValue.json(result.extra_columns),
                "quarantine_reasons": dg.MetadataValue.json(result.quarantine_reasons),
                "quarantine_sample": dg.MetadataValue.json(sample),
            }
        )

    return _raw


raw_assets = [build_raw_asset(name) for name in TABLES]
