"""Population stability index (PSI) between two scoring runs.

``PSI = sum_i (a_i - e_i) * ln(a_i / e_i)`` over bins, where ``e_i`` is the share of the
reference (previous run) in bin i and ``a_i`` the share of the current run.

* numeric columns: the bins are the reference's deciles (interior edges = its 10%..90%
  quantiles, duplicates removed, so a column with few distinct values gets fewer bins),
  open at both ends: ``(-inf, q1], (q1, q2], ..., (q9, inf)``; missing values are a bin of
  their own.  For the churn probability, edges closer than 0.01 to the previous one are
  dropped, so reshuffling among near-zero probabilities is not reported as drift;
* categorical columns: one bin per level seen in either run, plus missing;
* an empty bin's share is floored at ``EPS`` (1e-4) so the logarithm is defined.

Conventional reading: < 0.1 stable, 0.1-0.25 moderate shift (warn), > 0.25 major shift.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

EPS = 1e-4
WARN_PSI = 0.1
ALERT_PSI = 0.25
N_BINS = 10


def _shares(counts: np.ndarray) -> np.ndarray:
    total = counts.sum()
    shares = counts / total if total else np.zeros_like(counts, dtype="float64")
    return np.maximum(shares, EPS)


def psi_from_shares(expected: Any, actual: Any) -> float:
    e = np.maximum(np.asarray(expected, dtype="float64"), EPS)
    a = np.maximum(np.asarray(actual, dtype="float64"), EPS)
    return float(np.sum((a - e) * np.log(a / e)))


def numeric_edges(reference: Any, n_bins: int = N_BINS, *, min_width: float = 0.0) -> np.ndarray:
    """Interior bin edges: the reference's 1/n .. (n-1)/n quantiles, unique and sorted.

    With ``min_width`` an edge closer than that to the previous kept edge (or to the
    reference's minimum) is dropped (used for
    the churn probability: when most customers sit near 0, deciles 0.0003 apart would count
    immaterial reshuffling among near-certain stayers as drift).
    """
    ref = pd.to_numeric(pd.Series(reference), errors="coerce").astype("float64").dropna().to_numpy()
    if ref.size == 0:
        return np.empty(0)
    qs = np.unique(np.quantile(ref, np.linspace(0, 1, n_bins + 1)[1:-1]))
    if min_width <= 0 or qs.size == 0:
        return qs
    kept: list[float] = []
    previous = float(ref.min())
    for q in qs:
        if q - previous >= min_width:
            kept.append(float(q))
            previous = float(q)
    return np.asarray(kept)


def _numeric_counts(values: Any, edges: np.ndarray) -> np.ndarray:
    v = pd.to_numeric(pd.Series(values), errors="coerce").astype("float64").to_numpy()
    missing = np.isnan(v)
    # searchsorted(side="left"): value == edge falls in the bin that edge closes, i.e. (lo, hi]
    idx = np.searchsorted(edges, v[~missing], side="left")
    counts = np.bincount(idx, minlength=edges.size + 1).astype("float64")
    return np.append(counts, float(missing.sum()))


def psi_numeric(reference: Any, current: Any, *, n_bins: int = N_BINS, min_width: float = 0.0) -> float:
    edges = numeric_edges(reference, n_bins, min_width=min_width)
    return psi_from_shares(_shares(_numeric_counts(reference, edges)), _shares(_numeric_counts(current, edges)))


def text_values(values: Any, missing: str | None = None) -> pd.Series:
    """Each value as its str() text, missing values as ``missing`` (a fresh RangeIndex; one C-level
    pass, not a Python call per row: used for categorical PSI bins and segment values)."""
    s = pd.Series(values, dtype=object).reset_index(drop=True)
    is_missing = s.isna().to_numpy()
    out = s.astype(str).astype(object)
    out[is_missing] = missing
    return out


def psi_categorical(reference: Any, current: Any) -> float:
    ref, cur = text_values(reference), text_values(current)
    levels = sorted(set(ref.dropna()) | set(cur.dropna()))

    def counts(s: pd.Series) -> np.ndarray:
        vc = s.value_counts()
        return np.array([float(vc.get(level, 0)) for level in levels] + [float(s.isna().sum())])

    return psi_from_shares(_shares(counts(ref)), _shares(counts(cur)))


def psi(reference: Any, current: Any, *, n_bins: int = N_BINS, min_width: float = 0.0) -> float:
    """PSI of ``current`` against ``reference``: numeric bins when both sides have a numeric
    (or boolean) dtype, otherwise one bin per level (strings, categories)."""
    ref = pd.Series(reference)
    cur = pd.Series(current)

    def is_num(s: pd.Series) -> bool:
        if isinstance(s.dtype, pd.CategoricalDtype):
            return False
        return pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s) or bool(s.isna().all())

    if is_num(ref) and is_num(cur):
        return psi_numeric(ref.astype("float64"), cur.astype("float64"), n_bins=n_bins, min_width=min_width)
    return psi_categorical(ref, cur)


def drift_status(value: float | None) -> str:
    if value is None or np.isnan(value):
        return "n/a"
    if value > ALERT_PSI:
        return "alert"
    if value > WARN_PSI:
        return "warn"
    return "stable"


SCORE_COLUMN = "churn_probability"
SCORE_MIN_BIN_WIDTH = 0.01


def drift_report(
    reference: pd.DataFrame, current: pd.DataFrame, columns: list[str]
) -> dict[str, float]:
    """PSI per column present in both frames (in ``columns`` order); the churn probability's
    bins are at least ``SCORE_MIN_BIN_WIDTH`` wide."""
    out: dict[str, float] = {}
    for col in columns:
        if col in reference.columns and col in current.columns:
            width = SCORE_MIN_BIN_WIDTH if col == SCORE_COLUMN else 0.0
            out[col] = psi(reference[col], current[col], min_width=width)
    return out
