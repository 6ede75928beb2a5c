"""Publish asset: the BI-facing Parquet files and DuckDB file, replaced atomically."""


import dagster as dg

from orchestration.publish import publish
from orchestration.resources import WarehouseResource
from orchestration.settings import get_settings

# published name -> warehouse relation (also the upstream asset key: schema / table)
PUBLISHED_TABLES: dict[str, str] = {
    "fct_churn_period": "marts.fct_churn_period",
    "fct_churn_segment_period": "marts.fct_churn_segment_period",
    "fct_cohort_retention": "marts.fct_cohort_retention",
    "customer_churn_scores": "ml.customer_churn_scores",
    "churn_risk_by_segment": "ml.churn_risk_by_segment",
}


@dg.asset(
    key=["published_churn_tables"],
    group_name="publish",
    kinds={"parquet", "duckdb"},
    owners=["team:data-engineering"],
    deps=[dg.AssetKey(["marts", "fct_churn_period"]), dg.AssetKey(["marts", "fct_churn_segment_period"]),
          dg.AssetKey(["marts", "fct_cohort_retention"]),
          dg.AssetKey(["customer_churn_scores"]), dg.AssetKey(["churn_risk_by_segment"])],
    description=(
        "data/published/<table>.parquet and data/published/churn.duckdb (DuckDB 1.4 storage "
        "format) with fct_churn_period, fct_churn_segment_period, fct_cohort_retention, customer_churn_scores and "
        "churn_risk_by_segment, plus manifest.json. Files are staged and swapped in with atomic "
        "renames; the private warehouse is never exposed to BI tools."
    ),
)
def published_churn_tables(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    settings = get_settings()
    with warehouse.connect() as con:
        as_of = con.execute("select as_of_date, churn_definition from intermediate.int_run_parameters").fetchone()
        manifest = publish(
            con,
            PUBLISHED_TABLES,
            settings.published_dir,
            run_id=context.run_id,
            extra_manifest={"source": settings.source, "as_of_date": str(as_of[0]), "churn_definition": as_of[1],
                            "period_grain": settings.period_grain},
        )
    return dg.MaterializeResult(
        metadata={
            "folder": dg.MetadataValue.path(str(settings.published_dir)),
            "as_of_date": str(as_of[0]),
            **{f"rows_{t['name']}": t["rows"] for t in manifest["tables"]},
        }
    )
