"""Model assets: train (with the registry), score active customers, aggregate risk by segment."""


import subprocess

import dagster as dg
import pandas as pd

from ml import features, plots, registry, score, train
from orchestration.resources import WarehouseResource
from orchestration.settings import REPO_ROOT, get_settings

OWNERS = ["team:data-science"]


def code_version() -> str:
    try:
        out = subprocess.run(["git", "rev-parse", "--short", "HEAD"], cwd=REPO_ROOT, capture_output=True, text=True, timeout=5)
        return out.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def _fmt(value: float | None, digits: int = 3) -> str:
    return "n/a" if value is None else f"{value:.{digits}f}"


def _md_png(png: bytes, alt: str) -> str:
    import base64

    return f"![{alt}](data:image/png;base64,{base64.b64encode(png).decode()})"


@dg.asset(
    key=["churn_model"],
    group_name="ml",
    kinds={"xgboost", "python"},
    owners=OWNERS,
    deps=[dg.AssetKey(["ml", "ml_observations"])],
    description=(
        "XGBoost churn classifier trained on ml_observations (customer x period start, features "
        "known at that date, label = churned in that period). Time split: test on the last "
        "observation date. Saved to the versioned model registry with metrics and features."
    ),
)
def churn_model(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    settings = get_settings()
    with warehouse.connect(read_only=True) as con:
        obs = features.load_frame(con, "ml.ml_observations")
    if obs.empty or obs["label"].nunique() < 2:
        raise dg.Failure(
            description=f"ml.ml_observations has {len(obs)} rows and labels {sorted(obs['label'].unique().tolist())}; "
            "the model needs churned and retained customers — check the churn definition and the as-of date"
        )
    result = train.train_model(obs, seed=settings.seed)
    path = registry.save_model(result, settings.models_dir, code_version=code_version())
    m = result.metrics
    md = [
        "| model | ROC AUC | PR AUC | top-decile lift | Brier |",
        "|---|---|---|---|---|",
    ]
    for name, met in {"xgboost": m, **result.baselines}.items():
        md.append(f"| {name} | {_fmt(met.get('roc_auc'))} | {_fmt(met.get('pr_auc'))} | "
                  f"{_fmt(met.get('top_decile_lift'), 2)} | {_fmt(met.get('brier'), 4)} |")
    test = result.test_predictions
    pics = ""
    if test is not None and len(test):
        y, p = test["label"].to_numpy(dtype=float), test["churn_probability"].to_numpy(dtype=float)
        pics = "\n\n" + "\n".join([
            _md_png(plots.lift_chart_png(y, p), "lift chart"),
            _md_png(plots.calibration_png(y, p), "calibration curve"),
            _md_png(plots.importance_png(result), "feature importance"),
        ])
    return dg.MaterializeResult(
        metadata={
            "roc_auc": float(m["roc_auc"]),
            "pr_auc": float(m["pr_auc"]),
            "top_decile_lift": float(m["top_decile_lift"]),
            "brier": float(m["brier"]),
            "expected_churners_test": float(m["expected_churners"]),
            "actual_churners_test": float(m["actual_churners"]),
            "split_method": str(result.split_method),
            "split": dg.MetadataValue.json(result.split),
            "n_features": len(result.features),
            "features": dg.MetadataValue.json(result.features),
            "model_path": dg.MetadataValue.path(str(path)),
            "evaluation": dg.MetadataValue.md("\n".join(md) + pics),
        }
    )


@dg.asset(
    key=["customer_churn_scores"],
    group_name="ml",
    kinds={"xgboost", "duckdb"},
    owners=OWNERS,
    deps=[churn_model, dg.AssetKey(["ml", "ml_scoring_set"])],
    description=(
        "One row per currently active customer: churn_probability (of churning in the next "
        "period), risk_tier, top 3 drivers from XGBoost per-feature contributions, monthly value "
        "and expected value at risk. Written to ml.customer_churn_scores."
    ),
)
def customer_churn_scores(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    settings = get_settings()
    latest = registry.latest_model(settings.models_dir)
    if latest is None:
        raise dg.Failure(description=f"no trained model under {settings.models_dir}; materialize churn_model first")
    result = registry.load_model(latest)
    with warehouse.connect() as con:
        frame = features.load_frame(con, "ml.ml_scoring_set")
        scored = score.score(result, frame, high=settings.high_risk_threshold, medium=settings.medium_risk_threshold)
        scored["model_version"] = latest.name
        con.register("_scored", scored)
        con.execute("create schema if not exists ml")
        con.execute(
            "create or replace table ml.customer_churn_scores as "
            "select * replace (cast(observation_date as date) as observation_date) from _scored "
            "order by churn_probability desc, customer_id"
        )
        con.unregister("_scored")
    tiers = scored["risk_tier"].value_counts().to_dict()
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(scored),
            "model_version": latest.name,
            "mean_churn_probability": float(scored["churn_probability"].mean()) if len(scored) else 0.0,
            "expected_churners": float(scored["churn_probability"].sum()),
            **{f"tier_{k}": int(v) for k, v in tiers.items()},
            "top_at_risk": dg.MetadataValue.md(scored.head(10)[["customer_id", "churn_probability", "risk_tier", "top_drivers"]].to_markdown(index=False)),
        }
    )


@dg.asset(
    key=["churn_risk_by_segment"],
    group_name="ml",
    kinds={"duckdb", "python"},
    owners=OWNERS,
    deps=[customer_churn_scores, dg.AssetKey(["marts", "fct_churn_segment_period"])],
    description=(
        "Risk by segment for the currently active customers: customers, mean probability, "
        "expected churners (sum of probabilities), revenue at risk and the high-risk count, for "
        "every segment dimension used in fct_churn_segment_period."
    ),
)
def churn_risk_by_segment(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    settings = get_settings()
    with warehouse.connect() as con:
        dims = [r[0] for r in con.execute("select distinct segment_dimension from marts.fct_churn_segment_period order by 1").fetchall()]
        scores = con.sql("select * from ml.customer_churn_scores").df()
        attrs = con.sql("select * from ml.ml_scoring_set").df()
        keep = ["customer_id"] + [d for d in dims if d in attrs.columns and d not in scores.columns]
        merged = scores.merge(attrs[keep], on="customer_id", how="left")
        dims_present = [d for d in dims if d in merged.columns]
        seg = score.risk_by_segment(merged, dims_present, high=settings.high_risk_threshold)
        con.register("_seg", seg)
        con.execute("create or replace table ml.churn_risk_by_segment as select * from _seg")
        con.unregister("_seg")
    return dg.MaterializeResult(metadata={"dagster/row_count": len(seg), "dimensions": dg.MetadataValue.json(dims_present)})
