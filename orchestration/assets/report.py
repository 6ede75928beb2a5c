"""The static HTML churn report, rebuilt from the published tables after each publish."""

import json

import dagster as dg

from orchestration.assets.publish import PUBLISHED_TABLES
from orchestration.report import build_report
from orchestration.resources import WarehouseResource
from orchestration.settings import get_settings


@dg.asset(
    key=["churn_report"],
    group_name="publish",
    kinds={"html"},
    owners=["team:analytics"],
    deps=[dg.AssetKey(["published", name]) for name in PUBLISHED_TABLES],
    description=(
        "data/published/report/index.html: a self-contained report (no network; charts embedded as "
        "PNG) with the churn trend and MRR bridge, cohort retention heatmap, segment churn with "
        "confidence intervals, risk distribution and top at-risk customers, model quality and data quality."
    ),
)
def churn_report(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    settings = get_settings()
    pub = settings.published_dir
    import pandas as pd

    scores = pd.read_parquet(pub / "customer_churn_scores.parquet", columns=["model_version"])
    meta = None
    if len(scores):
        folder = settings.models_dir / str(scores["model_version"].iloc[0])
        if (folder / "metadata.json").exists():
            meta = json.loads((folder / "metadata.json").read_text())
            meta["_predictions_path"] = str(folder / "test_predictions.csv")
    with warehouse.connect(read_only=True) as con:
        quality = [
            {"table": t, "rows_quarantined": n}
            for t, n in con.execute(
                "select t.table_name, count(q.table_name) from (select distinct table_name from information_schema.tables "
                "where table_schema = 'raw' and table_name <> 'quarantine') t "
                "left join raw.quarantine q on q.table_name = t.table_name group by 1 order by 1"
            ).fetchall()
        ]
    docs = settings.gx_docs_dir / "index.html"
    path = build_report(pub, model_metadata=meta, data_quality=quality, gx_docs_index=docs if docs.exists() else None)
    return dg.MaterializeResult(
        metadata={
            "path": dg.MetadataValue.path(str(path)),
            "size_kb": round(path.stat().st_size / 1024, 1),
        }
    )
