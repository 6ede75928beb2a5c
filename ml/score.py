"""Score customers with a trained model and roll risk up by segment.

Drivers come from XGBoost's exact TreeSHAP contributions (``pred_contribs=True``), in
log-odds units.  A driver is a feature that *raises* this customer's churn risk
relative to the model's baseline; only positive contributions are listed because
"why is this customer at risk" is the question the CRM users ask.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from ml.features import DATE_COLUMN, ID_COLUMN, VALUE_COLUMN
from ml.train import TrainResult, make_dmatrix

N_DRIVERS = 3
MISSING_SEGMENT = "(missing)"


def risk_tier(p: np.ndarray | pd.Series, *, high: float = 0.5, medium: float = 0.2) -> np.ndarray:
    """'high' if p >= high, 'medium' if p >= medium, else 'low'."""
    p_arr = np.asarray(p, dtype="float64")
    return np.where(p_arr >= high, "high", np.where(p_arr >= medium, "medium", "low")).astype(object)


def score(
    result: TrainResult, frame: pd.DataFrame, *, high: float = 0.5, medium: float = 0.2
) -> pd.DataFrame:
    """Churn probability, risk tier, top drivers and value at risk per row of ``frame``.

    ``frame`` is observation-table shaped (features plus customer_id,
    observation_date, monthly_value); its labels, if any, are ignored.  Output rows
    are in ``frame`` order with a fresh RangeIndex.
    """
    if not 0.0 <= medium <= high <= 1.0:
        raise ValueError(f"need 0 <= medium <= high <= 1, got medium={medium}, high={high}")
    for col in (ID_COLUMN, DATE_COLUMN, VALUE_COLUMN):
        if col not in frame.columns:
            raise KeyError(f"scoring frame lacks column {col!r}")

    features = result.feature_spec.columns
    n = len(frame)
    if n == 0:
        prob = np.empty(0)
        contribs = np.empty((0, len(features)))
    else:
        dm = make_dmatrix(frame, result.feature_spec)
        prob = result.booster.predict(dm).astype("float64")
        # Last column of pred_contribs is the bias term (baseline log-odds): not a feature.
        contribs = result.booster.predict(dm, pred_contribs=True)[:, :-1].astype("float64")

    k = min(N_DRIVERS, len(features))
    order = np.argsort(-contribs, axis=1, kind="stable")[:, :k]
    top_vals = np.take_along_axis(contribs, order, axis=1)
    names = np.asarray(features, dtype=object)[order]

    driver_cols: list[list[str | None]] = [[None] * n for _ in range(N_DRIVERS)]
    readable: list[str | None] = [None] * n
    for i in range(n):
        parts = []
        for j in range(k):
            if top_vals[i, j] > 0:
                driver_cols[j][i] = names[i, j]
                parts.append(f"{names[i, j]} (+{top_vals[i, j]:.2f})")
        readable[i] = "; ".join(parts) if parts else None

    monthly_value = pd.to_numeric(frame[VALUE_COLUMN], errors="coerce").astype("float64").to_numpy()
    out = pd.DataFrame(
        {
            ID_COLUMN: frame[ID_COLUMN].astype(str).to_numpy(),
            DATE_COLUMN: pd.to_datetime(frame[DATE_COLUMN]).to_numpy(),
            "churn_probability": prob,
            "risk_tier": risk_tier(prob, high=high, medium=medium),
            **{f"driver_{j + 1}": pd.Series(driver_cols[j], dtype=object) for j in range(N_DRIVERS)},
            "top_drivers": pd.Series(readable, dtype=object),
            VALUE_COLUMN: monthly_value,
            "expected_value_at_risk": prob * monthly_value,
        }
    )
    return out


def risk_by_segment(
    scored: pd.DataFrame, dimensions: list[str], *, high: float = 0.5
) -> pd.DataFrame:
    """Aggregate scored customers by each segment dimension (plus an 'all' total).

    ``scored`` is the output of :func:`score` joined with segment attribute columns,
    and is expected to hold one row per customer (rows are what get counted).
    Returns columns segment_dimension, segment_value, customers,
    mean_churn_probability, expected_churners, revenue_at_risk, high_risk_customers;
    within a dimension, segments are ordered by revenue_at_risk descending.
    """
    missing = [d for d in dimensions if d not in scored.columns]
    if missing:
        raise KeyError(f"scored frame lacks segment columns: {missing}")
    prob = pd.to_numeric(scored["churn_probability"]).astype("float64")
    base = pd.DataFrame(
        {
            "p": prob.to_numpy(),
            "ev": pd.to_numeric(scored["expected_value_at_risk"]).astype("float64").to_numpy(),
            "is_high": (prob >= high).to_numpy(),
        }
    )
    frames = []
    for dim in ["all", *dimensions]:
        if dim == "all":
            values = pd.Series(["all"] * len(scored), dtype=object)
        else:
            # Null segment values get an explicit bucket so their risk is not dropped.
            values = pd.Series(
                [MISSING_SEGMENT if pd.isna(v) else str(v) for v in scored[dim].astype(object)],
                dtype=object,
            )
        g = base.assign(segment_value=values.to_numpy()).groupby("segment_value", sort=False)
        agg = pd.DataFrame(
            {
                "customers": g.size(),
                "mean_churn_probability": g["p"].mean(),
                "expected_churners": g["p"].sum(),
                # min_count=0: a segment whose monthly_value is all null has 0 known at risk.
                "revenue_at_risk": g["ev"].sum(min_count=0),
                "high_risk_customers": g["is_high"].sum(),
            }
        ).reset_index()
        agg.insert(0, "segment_dimension", "all" if dim == "all" else dim)
        agg = agg.sort_values(["revenue_at_risk", "segment_value"], ascending=[False, True], kind="stable")
        frames.append(agg)
    out = pd.concat(frames, ignore_index=True)
    out["customers"] = out["customers"].astype("int64")
    out["high_risk_customers"] = out["high_risk_customers"].astype("int64")
    out["segment_value"] = out["segment_value"].astype(object)
    return out[
        [
            "segment_dimension",
            "segment_value",
            "customers",
            "mean_churn_probability",
            "expected_churners",
            "revenue_at_risk",
            "high_risk_customers",
        ]
    ]
