"""Markdown tables for the model report (the churn_model asset metadata in Dagster)."""

from __future__ import annotations

import math
from typing import Any

from ml import evaluate
from ml.score import action_for
from ml.train import MODEL_NAME, TrainResult


def _f(value: Any, digits: int = 3) -> str:
    if value is None:
        return "n/a"
    try:
        v = float(value)
    except (TypeError, ValueError):
        return str(value)
    return "n/a" if math.isnan(v) else f"{v:.{digits}f}"


def _pct(value: Any) -> str:
    s = _f(value, 1)
    return s if s == "n/a" else f"{float(value):+.1f}%"


def _row(cells: list[str]) -> str:
    return "| " + " | ".join(cells) + " |"


BACKTEST_HEADER = ["split", "model", "ROC AUC", "PR AUC", "top-decile lift", "Brier", "ECE",
                   "expected churners", "actual churners", "expected vs actual"]


def backtest_markdown(result: TrainResult) -> str:
    """One row per backtest split x model (XGBoost, then each baseline), then the means over
    the splits (expected and actual churners: totals over the splits).

    Rule baselines produce a ranking, not probabilities, so their Brier/ECE/expected are n/a.
    """
    lines = [_row(BACKTEST_HEADER), _row(["---"] * len(BACKTEST_HEADER))]

    def cells(split: str, name: str, m: dict[str, Any]) -> list[str]:
        exp = m.get("expected_churners")
        act = m.get("actual_churners")
        gap = (100.0 * (float(exp) - float(act)) / float(act)) if exp is not None and act else None
        return [split, name, _f(m.get("roc_auc")), _f(m.get("pr_auc")), _f(m.get("top_decile_lift"), 2),
                _f(m.get("brier"), 4), _f(m.get("expected_calibration_error"), 4),
                _f(exp, 1), _f(act, 0) if act is not None else "n/a", _pct(gap)]

    for rec in result.backtest.get("splits", []):
        lines.append(_row(cells(f"{rec['split']} ({rec['test_rows']} rows)", f"**{MODEL_NAME}**", rec["model"])))
        for name, m in rec["baselines"].items():
            lines.append(_row(cells(rec["split"], name, m)))
    lines.append(_row(cells("**mean** (churners: total)", f"**{MODEL_NAME}**", result.metrics)))
    for name, m in result.baselines.items():
        lines.append(_row(cells("**mean** (churners: total)", name, m)))
    return "\n".join(lines)


def importance_markdown(result: TrainResult, top_n: int = 15) -> str:
    """Global importance (share of total gain) with the retention lever each feature maps to."""
    lines = [_row(["feature", "share of gain", "lever when it drives risk"]), _row(["---"] * 3)]
    for row in result.feature_importance[:top_n]:
        lines.append(_row([row["feature"], f"{100 * row['gain_share']:.1f}%", str(action_for(row["feature"]))]))
    return "\n".join(lines)


def lift_markdown(y: Any, p: Any) -> str:
    t = evaluate.lift_table(y, p, n_groups=10)
    lines = [_row(["decile", "rows", "churners", "mean p", "churn rate", "lift", "cumulative capture"]),
             _row(["---"] * 7)]
    for r in t.itertuples():
        lines.append(_row([str(r.group), str(int(r.rows)), str(int(r.churners)), _f(r.mean_score),
                           _f(r.churn_rate), _f(r.lift, 2), f"{100 * r.cumulative_capture:.0f}%"]))
    return "\n".join(lines)


def calibration_markdown(y: Any, p: Any) -> str:
    t = evaluate.calibration_table(y, p, n_bins=10)
    lines = [_row(["p bin", "rows", "mean predicted", "observed rate", "expected churners", "actual churners"]),
             _row(["---"] * 6)]
    for r in t.itertuples():
        lines.append(_row([f"{r.bin_low:.1f}-{r.bin_high:.1f}", str(int(r.rows)), _f(r.mean_predicted),
                           _f(r.observed_rate), _f(r.mean_predicted * r.rows, 1), str(int(round(r.observed_rate * r.rows)))]))
    return "\n".join(lines)


def psi_markdown(psi: dict[str, float], *, warn: float, alert: float) -> str:
    lines = [_row(["column", "PSI", "status"]), _row(["---"] * 3)]
    for col, value in psi.items():
        status = "alert" if value > alert else "warn" if value > warn else "stable"
        lines.append(_row([col, _f(value, 4), status]))
    return "\n".join(lines)


def search_markdown(result: TrainResult) -> str:
    keys = ["config", "max_depth", "eta", "min_child_weight", "lambda", "best_iteration", "validation_log_loss", "chosen"]
    lines = [_row(keys), _row(["---"] * len(keys))]
    for r in result.search:
        lines.append(_row([_f(r.get(k), 5) if isinstance(r.get(k), float) else str(r.get(k)) for k in keys]))
    return "\n".join(lines)
