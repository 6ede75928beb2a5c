"""Model assets: train + backtest (with the registry), score active customers, aggregate risk by segment.

The model code is in ``ml/`` (plain Python); these assets only read the warehouse, call it
and describe the result.  The blocking ``model_quality_gate`` check on churn_model
(``orchestration/checks/model_checks.py``) records the gate result in the registry;
customer_churn_scores uses the newest model that passed it.
"""


import subprocess

import dagster as dg
import pandas as pd

from ml import drift, features, plots, registry, score, tables, train
from orchestration.progress import PREFIX as PROGRESS_PREFIX
from orchestration.resources import WarehouseResource
from orchestration.settings import REPO_ROOT, get_settings, pause_for_tests

OWNERS = ["team:data-science"]
PSI_TOP_FEATURES = 10


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


def _float(value) -> float:
    return float("nan") if value is None else float(value)


@dg.asset(
    key=["churn_model"],
    group_name="ml",
    kinds={"xgboost", "python"},
    owners=OWNERS,
    deps=[dg.AssetKey(["ml", "ml_observations"])],
    description=(
        "XGBoost churn classifier trained on ml_observations (customer x period start, features "
        "known at that date, label = churned in the period `label_lead_periods` ahead). Evaluated by a "
        "rolling-origin backtest over the last 3 observation dates (stratified 5-fold customer CV for "
        "single-snapshot data) against a logistic regression and a one-line rule; tuned by early "
        "stopping and a small search on a later validation slice, calibrated on that slice. Saved to the "
        "versioned model registry; the blocking model_quality_gate check decides whether it may score."
    ),
)
def churn_model(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    settings = get_settings()
    import time
    from datetime import datetime, timezone

    with warehouse.connect(read_only=True) as con:
        churn_definition = con.execute("select churn_definition from intermediate.int_run_parameters").fetchone()[0]
        columns = [r[0] for r in con.execute("describe ml.ml_observations").fetchall()]
        lead = (int(con.execute("select coalesce(min(_label_lead_periods), 0) from ml.ml_observations").fetchone()[0])
                if "_label_lead_periods" in columns else 0)
        trained_for = {"source": settings.source, "churn_definition": churn_definition,
                       "period_grain": settings.period_grain, "label_lead_periods": lead}
        # daily runs serve a recent passing model again; retraining happens every CHURN_RETRAIN_DAYS
        reused, why = registry.reusable_model(
            settings.models_dir, max_age_days=settings.retrain_days, now=datetime.now(timezone.utc),
            context=trained_for, code_version=code_version(), columns=columns)
        if reused is None:
            # above CHURN_MAX_TRAIN_ROWS (200k) labelled rows: a seeded sample stratified by label x date
            obs, sample = features.load_training_frame(con, "ml.ml_observations", max_rows=settings.max_train_rows,
                                                       seed=settings.seed)
    if reused is not None:
        context.log.info(f"{PROGRESS_PREFIX}train   not retrained: {why}")
        path, result = reused, registry.load_model(reused)
        stored = registry.read_metadata(reused).get("context") or {}
        sample, training_seconds = stored.get("training_sample") or {}, float(stored.get("training_seconds") or 0.0)
    else:
        context.log.info(f"{PROGRESS_PREFIX}train   training: {why}")
        if obs.empty or obs["label"].nunique() < 2:
            raise dg.Failure(
                description=f"ml.ml_observations has {len(obs)} rows and labels {sorted(obs['label'].unique().tolist())}; "
                "the model needs churned and retained customers — check the churn definition and the as-of date"
            )
        started = time.perf_counter()
        # one line per backtest cutoff in the run log and in `make run`'s terminal (orchestration/progress.py)
        result = train.train_model(obs, seed=settings.seed, contractual=churn_definition == "contractual",
                                   progress=lambda line: context.log.info(f"{PROGRESS_PREFIX}train   {line}"))
        training_seconds = round(time.perf_counter() - started, 2)
        pause_for_tests("training")  # the crash test kills the job here: trained, nothing saved yet
        path = registry.save_model(
            result, settings.models_dir, code_version=code_version(),
            extra_metadata={**trained_for, "training_sample": sample, "training_seconds": training_seconds},
        )
    m = result.metrics
    test = result.test_predictions
    report = [f"**Evaluation:** {result.backtest['description']}.", "", tables.backtest_markdown(result), "",
              f"ECE of all backtest predictions pooled (the quality gate's calibration figure): "
              f"{_float(m.get('pooled_expected_calibration_error')):.4f}. Rule baselines rank, they do not "
              "give probabilities, so their Brier/ECE/expected churners are n/a."]
    calib = result.calibrator.to_dict()
    report += ["", f"**Calibration of the production model:** `{calib['method']}`"
               + (f" (a = {calib['a']:.3f}, b = {calib['b']:.3f})" if calib["method"] == "platt" else "")
               + f", chosen by cross-validated log loss on the validation slice ({result.split.get('validation')})."]
    report += ["", "**Hyper-parameter search (production model, validation log loss):**", "", tables.search_markdown(result)]
    report += ["", "**Global feature importance (share of total gain):**", "", tables.importance_markdown(result)]
    pics = []
    if test is not None and len(test):
        y, p = test["label"].to_numpy(dtype=float), test["churn_probability"].to_numpy(dtype=float)
        report += ["", "**Lift by decile (pooled backtest predictions):**", "", tables.lift_markdown(y, p),
                   "", "**Calibration (pooled backtest predictions):**", "", tables.calibration_markdown(y, p)]
        pics = [_md_png(plots.lift_chart_png(y, p), "lift chart"),
                _md_png(plots.calibration_png(y, p), "calibration curve")]
    pics.append(_md_png(plots.importance_png(result), "feature importance"))
    per_split = {rec["split"]: {"expected": rec["model"]["expected_churners"], "actual": rec["model"]["actual_churners"],
                                "pct": rec["expected_vs_actual_pct"], "ece": rec["model"]["expected_calibration_error"]}
                 for rec in result.backtest["splits"]}
    best_base = max(result.baselines.items(), key=lambda kv: _float(kv[1].get("roc_auc")), default=(None, {}))
    return dg.MaterializeResult(
        metadata={
            # False on runs that served a recent model again (model_reuse says which and why)
            "trained_this_run": reused is None,
            "model_reuse": why,
            "training_rows_available": int(sample.get("rows_available") or 0),
            "training_rows_used": int(sample.get("rows_used") or 0),
            "training_sampled": bool(sample.get("sampled")),
            "training_seconds": training_seconds,
            "roc_auc": _float(m["roc_auc"]),
            "pr_auc": _float(m["pr_auc"]),
            "top_decile_lift": _float(m["top_decile_lift"]),
            "brier": _float(m["brier"]),
            "expected_calibration_error": _float(m["expected_calibration_error"]),
            "pooled_expected_calibration_error": _float(m.get("pooled_expected_calibration_error")),
            "best_baseline": str(best_base[0]),
            "best_baseline_roc_auc": _float(best_base[1].get("roc_auc")),
            "expected_churners_backtest": _float(m["expected_churners"]),
            "actual_churners_backtest": _float(m["actual_churners"]),
            "expected_vs_actual_by_split": dg.MetadataValue.json(per_split),
            "split_method": str(result.split_method),
            "backtest_method": dg.MetadataValue.text(result.backtest["description"]),
            "backtest": dg.MetadataValue.md(tables.backtest_markdown(result)),
            "split": dg.MetadataValue.json(result.split),
            "training_window": dg.MetadataValue.json(result.training_window),
            "calibration": dg.MetadataValue.json(calib),
            "params": dg.MetadataValue.json(result.params),
            "gate_thresholds": dg.MetadataValue.json(result.gate_thresholds),
            "label_lead_periods": lead,
            "n_features": len(result.features),
            "features": dg.MetadataValue.json(result.features),
            "feature_importance": dg.MetadataValue.md(tables.importance_markdown(result)),
            "model_version": path.name,
            "model_path": dg.MetadataValue.path(str(path)),
            "evaluation": dg.MetadataValue.md("\n".join(report) + "\n\n" + "\n".join(pics)),
        }
    )


SCORE_COLUMNS = [
    "customer_id", "observation_date", "churn_probability", "risk_tier", "driver_1", "driver_2", "driver_3",
    "top_drivers", "recommended_action", "monthly_value", "expected_mrr_at_risk", "clv_estimate", "clv_at_risk",
    "expected_value_at_risk", "model_version",
]


def _drift(context: dg.AssetExecutionContext, result: train.TrainResult, frame: pd.DataFrame,
           scored: pd.DataFrame, model_version: str) -> dict:
    """PSI of the score and the model's top features against the previous scoring run, then
    store this run's distribution as the next run's reference."""
    settings = get_settings()
    spec = result.feature_spec
    current = pd.concat(
        [scored[["customer_id", "churn_probability"]].reset_index(drop=True),
         features.to_matrix(frame, spec).reset_index(drop=True)],
        axis=1,
    )
    ranked = [r["feature"] for r in result.feature_importance if r["gain_share"] > 0] or list(result.features)
    top = ranked[:PSI_TOP_FEATURES]
    snapshots = registry.scoring_snapshots(settings.models_dir)
    previous = snapshots[-1] if snapshots else None
    psi: dict[str, float] = {}
    if previous is not None:
        import pyarrow.parquet as pq

        # only the columns compared (the snapshot holds every feature of every scored customer)
        wanted = [c for c in ["churn_probability", *top] if c in set(pq.read_schema(previous).names)]
        psi = drift.drift_report(pd.read_parquet(previous, columns=wanted), current, ["churn_probability", *top])
    registry.save_scoring_snapshot(
        settings.models_dir, current,
        {"model_version": model_version, "run_id": context.run_id, "rows": len(current),
         "previous": previous.name if previous is not None else None, "psi": psi,
         "warn_psi": drift.WARN_PSI, "alert_psi": drift.ALERT_PSI},
    )
    worst = max(psi.values()) if psi else None
    if worst is not None and worst > drift.WARN_PSI:
        shifted = ", ".join(f"{k} {v:.3f}" for k, v in psi.items() if v > drift.WARN_PSI)
        context.log.warning(f"scoring distribution shifted since the previous run (PSI > {drift.WARN_PSI}): {shifted}")
    meta: dict = {
        "drift_reference": previous.name if previous is not None else "none (first scoring run)",
        "drift_status": drift.drift_status(worst),
    }
    if psi:
        meta["psi_churn_probability"] = float(psi.get("churn_probability", float("nan")))
        meta["psi_max"] = float(worst)
        meta["psi"] = dg.MetadataValue.md(tables.psi_markdown(psi, warn=drift.WARN_PSI, alert=drift.ALERT_PSI))
    return meta


@dg.asset(
    key=["customer_churn_scores"],
    group_name="ml",
    kinds={"xgboost", "duckdb"},
    owners=OWNERS,
    deps=[churn_model, dg.AssetKey(["ml", "ml_scoring_set"])],
    description=(
        "One row per currently active customer, scored by the newest model that passed the quality gate: "
        "churn_probability, risk_tier, top 3 drivers (XGBoost per-feature contributions), recommended_action "
        "(the top driver's retention lever), monthly value, expected MRR at risk, a CLV estimate and CLV at "
        "risk. PSI of the score and the top 10 features against the previous scoring run is in the metadata. "
        "Written to ml.customer_churn_scores."
    ),
)
def customer_churn_scores(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    settings = get_settings()
    chosen = registry.latest_passing_model(settings.models_dir)
    if chosen is None:
        newest = registry.latest_model(settings.models_dir)
        raise dg.Failure(description=(
            f"no model under {settings.models_dir} has passed the quality gate"
            + (f" (newest: {newest.name}, gate: {registry.read_gate(newest)})" if newest else "")
            + "; materialize churn_model and its model_quality_gate check first"))
    result = registry.load_model(chosen)
    months = score.MONTHS_PER_PERIOD.get(settings.period_grain, 1.0)
    with warehouse.connect() as con:
        frame = features.load_frame(con, "ml.ml_scoring_set")
        drivers = settings.drivers_for(len(frame))
        scored = score.score(result, frame, high=settings.high_risk_threshold, medium=settings.medium_risk_threshold,
                             months_per_period=months, drivers=drivers)
        scored["model_version"] = chosen.name
        scored = scored[SCORE_COLUMNS]
        con.register("_scored", scored)
        con.execute("create schema if not exists ml")
        con.execute(
            "create or replace table ml.customer_churn_scores as "
            "select * replace (cast(observation_date as date) as observation_date) from _scored "
            "order by churn_probability desc, customer_id"
        )
        con.unregister("_scored")
    drift_meta = _drift(context, result, frame, scored, chosen.name)
    tiers = scored["risk_tier"].value_counts().to_dict()
    actions = scored["recommended_action"].fillna("(no positive driver)").value_counts().to_dict()
    top = scored.sort_values("churn_probability", ascending=False).head(10)
    return dg.MaterializeResult(
        metadata={
            "dagster/row_count": len(scored),
            "model_version": chosen.name,
            # exact = TreeSHAP, approx = Saabas path attribution (CHURN_DRIVER_METHOD)
            "driver_method": drivers,
            "mean_churn_probability": float(scored["churn_probability"].mean()) if len(scored) else 0.0,
            "expected_churners": float(scored["churn_probability"].sum()),
            "expected_mrr_at_risk": float(scored["expected_mrr_at_risk"].sum()),
            "clv_at_risk": float(scored["clv_at_risk"].sum()),
            **{f"tier_{k}": int(v) for k, v in tiers.items()},
            "recommended_actions": dg.MetadataValue.json({str(k): int(v) for k, v in actions.items()}),
            **drift_meta,
            "top_at_risk": dg.MetadataValue.md(top[["customer_id", "churn_probability", "risk_tier", "top_drivers",
                                                    "recommended_action"]].to_markdown(index=False)),
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
        "expected churners (sum of probabilities), expected MRR at risk, CLV at risk and the high-risk "
        "count, for every segment dimension used in fct_churn_segment_period."
    ),
)
def churn_risk_by_segment(context: dg.AssetExecutionContext, warehouse: WarehouseResource) -> dg.MaterializeResult:
    settings = get_settings()
    with warehouse.connect() as con:
        dims = [r[0] for r in con.execute("select distinct segment_dimension from marts.fct_churn_segment_period order by 1").fetchall()]
        # only the columns the roll-up reads, joined in DuckDB: the scores' text columns (drivers,
        # actions) and the scoring set's ~60 feature columns never reach pandas (at 1M customers
        # reading them whole took ~3 s)
        have = {r[0] for r in con.execute("select column_name from information_schema.columns "
                                          "where table_schema = 'ml' and table_name = 'ml_scoring_set'").fetchall()}
        seg_cols = [d for d in dims if d in have and d not in SCORE_COLUMNS]
        merged = con.sql(
            "select s.customer_id, s.churn_probability, s.expected_mrr_at_risk, s.clv_at_risk"
            + "".join(f', a."{c}"' for c in seg_cols)
            + " from ml.customer_churn_scores s left join ml.ml_scoring_set a on a.customer_id = s.customer_id"
        ).df()
        dims_present = [d for d in dims if d in merged.columns]
        seg = score.risk_by_segment(merged, dims_present, high=settings.high_risk_threshold)
        con.register("_seg", seg)
        con.execute("create or replace table ml.churn_risk_by_segment as select * from _seg")
        con.unregister("_seg")
    overall = seg[seg["segment_dimension"] == "all"]
    return dg.MaterializeResult(metadata={
        "dagster/row_count": len(seg),
        "dimensions": dg.MetadataValue.json(dims_present),
        "expected_mrr_at_risk": float(overall["expected_mrr_at_risk"].sum()),
        "clv_at_risk": float(overall["clv_at_risk"].sum()),
        "mean_churn_probability": float(overall["mean_churn_probability"].sum()),
        "high_risk_customers": int(overall["high_risk_customers"].sum()),
        "risk_by_segment": dg.MetadataValue.md(_md_png(plots.segment_risk_png(seg), "risk by segment")),
    })
