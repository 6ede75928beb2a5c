"""Checks on the model: the blocking quality gate and the (non-blocking) score drift warning.

* ``model_quality_gate`` (blocking, on churn_model): the model must beat the best baseline's
  backtest ROC AUC (within a small tolerance) and keep its backtest ECE under a threshold
  (``ml.gate``; the thresholds travel in the model's metadata).  The result is written next to
  the model in the registry (``gate.json``).  A failure stops scoring and publishing in the run,
  and ``customer_churn_scores`` only ever loads the newest model that passed.
* ``score_drift_psi`` (WARN severity, on customer_churn_scores): fails when the PSI of the score
  or of one of the model's top 10 features against the previous scoring run exceeds 0.25.
"""


from pathlib import Path

import dagster as dg

from ml import drift, gate, registry
from orchestration.settings import get_settings

MODEL_KEY = dg.AssetKey(["churn_model"])
SCORES_KEY = dg.AssetKey(["customer_churn_scores"])


def _materialized_model_path(context: dg.AssetCheckExecutionContext) -> Path | None:
    """The registry folder the latest churn_model materialization wrote (its ``model_path``)."""
    event = context.instance.get_latest_materialization_event(MODEL_KEY)
    mat = event.asset_materialization if event is not None else None
    value = mat.metadata.get("model_path") if mat is not None else None
    if value is None:
        return None
    path = Path(getattr(value, "path", None) or getattr(value, "value", ""))
    return path if path.is_dir() else None


@dg.asset_check(
    asset=MODEL_KEY,
    name="model_quality_gate",
    blocking=True,
    description=(
        "Blocking quality gate: the model's backtest ROC AUC must beat the best baseline's (logistic "
        f"regression or rule) by more than -{gate.DEFAULT_AUC_TOLERANCE} and its backtest ECE must be at most "
        f"{gate.DEFAULT_MAX_ECE} (defaults; the thresholds are stored with each model). The result is recorded "
        "in the registry; only models that passed are used for scoring."
    ),
)
def model_quality_gate(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    settings = get_settings()
    path = _materialized_model_path(context) or registry.latest_model(settings.models_dir)
    if path is None:
        return dg.AssetCheckResult(passed=False, severity=dg.AssetCheckSeverity.ERROR,
                                   description=f"no model found under {settings.models_dir}")
    meta = registry.read_metadata(path)
    thresholds = gate.GateThresholds.from_dict(meta.get("gate_thresholds"))
    decision = gate.evaluate_gate(meta.get("metrics") or {}, meta.get("baselines") or {}, thresholds)
    registry.record_gate(path, {**decision.to_dict(), "model_version": path.name})
    serving = registry.latest_passing_model(settings.models_dir)
    return dg.AssetCheckResult(
        passed=decision.passed,
        severity=dg.AssetCheckSeverity.ERROR,
        description=f"{path.name}: {decision.summary}",
        metadata={
            "model_version": path.name,
            "model_roc_auc": decision.model_auc if decision.model_auc is not None else float("nan"),
            "best_baseline": str(decision.best_baseline),
            "best_baseline_roc_auc": decision.best_baseline_auc if decision.best_baseline_auc is not None else float("nan"),
            "auc_tolerance": thresholds.auc_tolerance,
            "ece": decision.ece if decision.ece is not None else float("nan"),
            "max_ece": thresholds.max_ece,
            "serving_model": serving.name if serving else "none",
        },
    )


@dg.asset_check(
    asset=SCORES_KEY,
    name="score_drift_psi",
    blocking=False,
    description=(
        "Population stability of the churn score and the model's top 10 features against the previous "
        f"scoring run: warns (asset log) above PSI {drift.WARN_PSI}, fails with WARN severity above "
        f"{drift.ALERT_PSI}. Does not block publishing."
    ),
)
def score_drift_psi(context: dg.AssetCheckExecutionContext) -> dg.AssetCheckResult:
    settings = get_settings()
    snapshots = registry.scoring_snapshots(settings.models_dir)
    info = registry.read_snapshot_info(snapshots[-1]) if snapshots else {}
    psi: dict[str, float] = {k: float(v) for k, v in (info.get("psi") or {}).items()}
    if not psi:
        return dg.AssetCheckResult(passed=True, severity=dg.AssetCheckSeverity.WARN,
                                   description="no previous scoring run to compare against")
    alert = {k: v for k, v in psi.items() if v > drift.ALERT_PSI}
    warn = {k: v for k, v in psi.items() if drift.WARN_PSI < v <= drift.ALERT_PSI}
    worst = max(psi, key=lambda k: psi[k])
    if alert:
        text = "major shift (PSI > %.2f): %s" % (drift.ALERT_PSI, ", ".join(f"{k} {v:.3f}" for k, v in alert.items()))
    elif warn:
        text = "moderate shift (PSI > %.2f): %s" % (drift.WARN_PSI, ", ".join(f"{k} {v:.3f}" for k, v in warn.items()))
    else:
        text = f"stable: max PSI {psi[worst]:.3f} ({worst})"
    return dg.AssetCheckResult(
        passed=not alert,
        severity=dg.AssetCheckSeverity.WARN,
        description=f"vs {info.get('previous')}: {text}",
        metadata={
            "psi_churn_probability": psi.get("churn_probability", float("nan")),
            "psi_max": psi[worst],
            "psi_max_column": worst,
            "psi": dg.MetadataValue.json(psi),
        },
    )


model_checks = [model_quality_gate, score_drift_psi]
