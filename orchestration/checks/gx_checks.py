"""Blocking Great Expectations checks on each raw batch and on the churn facts.

A failing check stops every downstream asset in the run, publishing included.
"""


import dagster as dg

from expectations.runner import validate_frame
from expectations.suites import churn_period_suite, raw_table_suite
from orchestration.ingest.contract import TABLES
from orchestration.resources import WarehouseResource
from orchestration.settings import get_settings


def _result(summary, what: str) -> dg.AssetCheckResult:
    meta = {
        "evaluated": summary.evaluated,
        "successful": summary.successful,
        "failures": dg.MetadataValue.json(summary.failures),
        "summary": dg.MetadataValue.md(summary.to_markdown()),
    }
    if summary.docs_index:
        meta["data_docs"] = dg.MetadataValue.path(summary.docs_index)
    return dg.AssetCheckResult(
        passed=summary.success,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(f"{what}: all {summary.evaluated} expectations passed" if summary.success
                     else f"{what}: " + " | ".join(summary.failures[:5])),
        metadata=meta,
    )


def build_raw_check(table_name: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(["raw", table_name]),
        name=f"gx_raw_{table_name}",
        blocking=True,
        description=f"GX suite raw_{table_name}: required columns, unique non-null keys, ranges, enums, date order.",
    )
    def _check(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        settings = get_settings()
        with warehouse.connect(read_only=True) as con:
            # drop the lineage columns: they are ours, not the batch's
            df = con.sql(f"select * exclude (_source_file, _row_number, _loaded_at) from raw.{table_name}").df()
        summary = validate_frame(df, raw_table_suite(TABLES[table_name]), docs_dir=settings.gx_docs_dir,
                                 batch_name=f"raw_{table_name}")
        return _result(summary, f"raw.{table_name}")

    return _check


@dg.asset_check(
    asset=dg.AssetKey(["marts", "fct_churn_period"]),
    name="gx_fct_churn_period",
    blocking=True,
    description="GX suite fct_churn_period: unique periods, non-negative counts, 0 <= churn_rate <= 1.",
)
def gx_fct_churn_period(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    settings = get_settings()
    with warehouse.connect(read_only=True) as con:
        df = con.sql("select * from marts.fct_churn_period").df()
    summary = validate_frame(df, churn_period_suite(), docs_dir=settings.gx_docs_dir, batch_name="fct_churn_period")
    return _result(summary, "marts.fct_churn_period")


raw_checks = [build_raw_check(t) for t in TABLES]
all_checks = [*raw_checks, gx_fct_churn_period]
