"""Small PNG charts for model reports (embedded in Dagster Markdown metadata).

Uses ``matplotlib.figure.Figure`` directly instead of pyplot: no global figure state
and no interactive backend, so it is safe inside a long-running, threaded process.
Rendering goes through the Agg canvas.
"""

from __future__ import annotations

import io
from typing import Any

import numpy as np
from matplotlib.backends.backend_agg import FigureCanvasAgg
from matplotlib.figure import Figure

from ml import evaluate
from ml.train import TrainResult


def _png(fig: Figure) -> bytes:
    FigureCanvasAgg(fig)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=100, bbox_inches="tight")
    return buf.getvalue()


def lift_chart_png(y: Any, p: Any) -> bytes:
    """Lift per score decile (decile 1 = highest predicted risk)."""
    table = evaluate.lift_table(y, p, n_groups=10)
    fig = Figure(figsize=(6, 3.5))
    ax = fig.add_subplot()
    ax.bar(table["group"], table["lift"], color="#c0392b")
    ax.axhline(1.0, color="grey", linestyle="--", linewidth=1, label="random")
    ax.set_xticks(table["group"])
    ax.set_xlabel("score decile (1 = highest risk)")
    ax.set_ylabel("lift (churn rate / overall)")
    ax.set_title("Lift by decile")
    ax.legend(loc="upper right")
    return _png(fig)


def calibration_png(y: Any, p: Any) -> bytes:
    """Reliability diagram: observed churn rate vs mean predicted probability, 10 bins."""
    table = evaluate.calibration_table(y, p, n_bins=10)
    fig = Figure(figsize=(4.5, 4.5))
    ax = fig.add_subplot()
    ax.plot([0, 1], [0, 1], color="grey", linestyle="--", linewidth=1, label="perfect")
    ax.plot(table["mean_predicted"], table["observed_rate"], marker="o", color="#2c3e50", label="model")
    for _, row in table.iterrows():
        ax.annotate(str(int(row["rows"])), (row["mean_predicted"], row["observed_rate"]),
                    textcoords="offset points", xytext=(4, -10), fontsize=7, color="grey")
    ax.set_xlim(0, 1)
    ax.set_ylim(0, 1)
    ax.set_xlabel("mean predicted probability")
    ax.set_ylabel("observed churn rate")
    ece = evaluate.expected_calibration_error(y, p)
    ax.set_title(f"Calibration (ECE {ece:.3f})")
    ax.legend(loc="upper left")
    return _png(fig)


def importance_png(result: TrainResult, *, top_n: int = 15) -> bytes:
    """Top features by total gain (how much loss reduction each feature bought)."""
    gain = result.booster.get_score(importance_type="total_gain")
    items = sorted(gain.items(), key=lambda kv: kv[1], reverse=True)[:top_n]
    fig = Figure(figsize=(6, 0.35 * max(len(items), 3) + 1))
    ax = fig.add_subplot()
    if items:
        names = [k for k, _ in items][::-1]
        values = np.array([v for _, v in items][::-1])
        ax.barh(names, values / values.sum(), color="#2980b9")
        ax.set_xlabel("share of total gain (shown features)")
    else:  # a model with only root splits has no importances
        ax.text(0.5, 0.5, "no splits in model", ha="center", va="center")
    ax.set_title("Feature importance")
    return _png(fig)


def segment_panels(seg: Any, *, max_dimensions: int = 6, max_values: int = 8) -> list[tuple[str, Any]]:
    """(dimension, rows) panels for :func:`segment_risk_png`.

    Dimensions are ordered by the spread of their values' mean probabilities (the most telling
    first; ties by name); within a panel the riskiest ``max_values`` values, riskiest first.
    """
    parts = seg[seg["segment_dimension"] != "all"]
    spread = parts.groupby("segment_dimension")["mean_churn_probability"].agg(lambda s: s.max() - s.min())
    order = sorted(spread.items(), key=lambda kv: (-kv[1], kv[0]))[:max_dimensions]
    return [(dim, parts[parts["segment_dimension"] == dim]
             .sort_values(["mean_churn_probability", "segment_value"], ascending=[False, True]).head(max_values))
            for dim, _ in order]


def segment_risk_png(seg: Any, *, max_dimensions: int = 6, max_values: int = 8) -> bytes:
    """Mean churn probability per segment value, one panel per dimension (``all`` as a dashed line).

    ``seg`` is the churn_risk_by_segment frame; panels as :func:`segment_panels`.
    """
    overall = seg.loc[seg["segment_dimension"] == "all", "mean_churn_probability"]
    ref = float(overall.iloc[0]) if len(overall) else None
    panels = segment_panels(seg, max_dimensions=max_dimensions, max_values=max_values)
    fig = Figure(figsize=(7, 1.2 + 1.6 * max(len(panels), 1)))
    if not panels:
        ax = fig.add_subplot()
        ax.text(0.5, 0.5, "no segment dimensions", ha="center", va="center")
        ax.set_axis_off()
        return _png(fig)
    for i, (dim, rows) in enumerate(panels):
        ax = fig.add_subplot(len(panels), 1, i + 1)
        rows = rows.iloc[::-1]  # barh draws bottom-up: riskiest on top
        labels = [f"{v} (n={int(n)})" for v, n in zip(rows["segment_value"], rows["customers"])]
        ax.barh(labels, rows["mean_churn_probability"], color="#c0392b")
        if ref is not None:
            ax.axvline(ref, color="grey", linestyle="--", linewidth=1)
        ax.set_title(dim, fontsize=9, loc="left")
        ax.tick_params(labelsize=7)
        ax.set_xlim(0, 1)
    fig.axes[-1].set_xlabel("mean churn probability (dashed: all active customers)")
    return _png(fig)
