"""Turn the dbt observation table into a model matrix.

The observation table has one row per ``customer_id`` x ``observation_date`` with a
``label`` column (0/1, NULL in the scoring set).  Every other column is a feature,
except columns whose name starts with ``_`` (reserved for bookkeeping upstream).

XGBoost rejects pandas 3's ``str`` dtype, so string columns become ``category``.  The
category *levels* are fixed at training time (``FeatureSpec``) and re-applied at
scoring time: pandas category codes are what XGBoost actually splits on, so the same
level must map to the same code in both places, and a level never seen in training
must become missing (NaN) rather than silently taking some other level's code.
"""

from __future__ import annotations

import numbers
import re
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd

# Columns with a fixed meaning in the observation table; never features.
ID_COLUMN = "customer_id"
DATE_COLUMN = "observation_date"
LABEL_COLUMN = "label"
RESERVED_COLUMNS: tuple[str, ...] = (ID_COLUMN, DATE_COLUMN, LABEL_COLUMN)
VALUE_COLUMN = "monthly_value"

# A bare or schema-qualified SQL identifier.  ``load_frame`` interpolates the relation
# name into SQL, so anything else (quotes, spaces, semicolons) is refused outright.
_IDENTIFIER_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*(\.[A-Za-z_][A-Za-z0-9_]*)?$")

# A string column with more distinct values than this is an identifier or free
# text, not a category; one-level-per-customer "categories" only teach the trees noise.
DEFAULT_MAX_LEVELS = 100


def load_frame(con: Any, relation: str) -> pd.DataFrame:
    """Read a DuckDB table or view into pandas.

    ``con`` is a ``duckdb.DuckDBPyConnection`` (typed loosely so this module does not
    need duckdb just to be imported).  ``relation`` must be ``name`` or
    ``schema.name``; it is validated before being put into the SQL text.
    """
    if not isinstance(relation, str) or not _IDENTIFIER_RE.match(relation):
        raise ValueError(f"refusing to read relation {relation!r}: not a plain SQL identifier")
    df = con.sql(f"select * from {relation}").df()
    if DATE_COLUMN in df.columns:
        # DuckDB DATE arrives as datetime64[us]; normalise so comparisons across
        # sources (and with python dates) behave the same.
        df[DATE_COLUMN] = pd.to_datetime(df[DATE_COLUMN])
    return df


# Training rows: above this many labelled observation rows the model trains on a sample
# (the orchestration settings pass CHURN_MAX_TRAIN_ROWS; this is its default).
DEFAULT_MAX_TRAIN_ROWS = 200_000
# Present when dbt sampled the training points itself: the labelled points before the sample.
PRESAMPLED_COLUMN = "_rows_available"


def load_training_frame(con: Any, relation: str, *, max_rows: int, seed: int) -> tuple[pd.DataFrame, dict[str, Any]]:
    """The labelled rows of ``relation``; above ``max_rows`` a seeded sample, stratified.

    Sampling scheme (so the model stays calibrated and the backtest keeps every date):
    the strata are label x observation date; every stratum keeps the same fraction
    ``f = max_rows / available`` of its rows, rounded up (so a rare stratum keeps at least
    one row, and the total is at most ``max_rows`` + the number of strata). Within a
    stratum the rows kept are those with the smallest ``hash(customer_id, observation_date,
    seed)``: deterministic for a seed, unrelated to any feature. Equal fractions keep the
    churn rate of every date, so probabilities need no re-weighting. The sample is drawn in
    DuckDB: the rows not kept never reach pandas.

    Returns the frame and ``{"rows_available", "rows_used", "sampled", "fraction",
    "max_rows", "seed", "method"}``.
    """
    if not isinstance(relation, str) or not _IDENTIFIER_RE.match(relation):
        raise ValueError(f"refusing to read relation {relation!r}: not a plain SQL identifier")
    available = int(con.execute(f"select count(*) from {relation} where {LABEL_COLUMN} is not null").fetchall()[0][0])
    info: dict[str, Any] = {"rows_available": available, "max_rows": int(max_rows), "seed": int(seed)}
    columns = [r[0] for r in con.execute(f"describe {relation}").fetchall()]
    if PRESAMPLED_COLUMN in columns:
        # dbt drew this same stratified sample before computing features (int_observation_points);
        # its column says how many labelled points there were before it
        df = con.sql(f"select * from {relation} where {LABEL_COLUMN} is not null").df()
        before = con.execute(f"select max({PRESAMPLED_COLUMN}) from {relation}").fetchall()[0][0]
        before = int(before) if before is not None else len(df)
        info.update(rows_available=before, rows_used=int(len(df)), sampled=len(df) < before,
                    fraction=round(min(1.0, max_rows / before), 6) if before and max_rows > 0 else 1.0,
                    method=("stratified by label x observation date, equal fraction per stratum (rounded up), rows "
                            "with the smallest md5(customer_id|observation_date|seed), drawn in dbt before features"
                            if len(df) < before else "all labelled rows"))
    elif max_rows <= 0 or available <= max_rows:
        df = con.sql(f"select * from {relation} where {LABEL_COLUMN} is not null").df()
        info.update(rows_used=int(len(df)), sampled=False, fraction=1.0, method="all labelled rows")
    else:
        fraction = max_rows / available
        df = con.sql(
            f"""select * exclude (_rank, _stratum_rows) from (
                    select *,
                        row_number() over (partition by {LABEL_COLUMN}, {DATE_COLUMN}
                                           order by hash({ID_COLUMN}, {DATE_COLUMN}, {int(seed)}), {ID_COLUMN}) as _rank,
                        count(*) over (partition by {LABEL_COLUMN}, {DATE_COLUMN}) as _stratum_rows
                    from {relation} where {LABEL_COLUMN} is not null
                ) s
                where _rank <= ceil(_stratum_rows * {fraction!r})
                order by {DATE_COLUMN}, {ID_COLUMN}"""
        ).df()
        info.update(rows_used=int(len(df)), sampled=True, fraction=round(fraction, 6),
                    method="stratified by label x observation date, equal fraction per stratum (rounded up), "
                           "rows with the smallest hash(customer_id, observation_date, seed)")
    if DATE_COLUMN in df.columns:
        df[DATE_COLUMN] = pd.to_datetime(df[DATE_COLUMN])
    return df, info


def _is_numeric_series(s: pd.Series) -> bool:
    """True if the column should be modelled as a number.

    Booleans count as numeric (0/1).  ``object`` columns are numeric only when every
    non-null value is a number (e.g. DuckDB DECIMALs surfaced as ``Decimal``); string
    columns stay categorical even if they look like digits (zip codes, plan ids).
    """
    if pd.api.types.is_bool_dtype(s) or pd.api.types.is_numeric_dtype(s):
        return True
    if pd.api.types.is_object_dtype(s):
        non_null = s.dropna()
        return len(non_null) > 0 and all(
            isinstance(v, (numbers.Number, np.bool_)) for v in non_null
        )
    return False


def _is_datetime_series(s: pd.Series) -> bool:
    return pd.api.types.is_datetime64_any_dtype(s) or isinstance(
        s.dtype, pd.PeriodDtype
    )


def feature_columns(df: pd.DataFrame) -> list[str]:
    """Feature columns of an observation frame, in frame order.

    Excludes the reserved columns, ``_``-prefixed columns, all-null columns (nothing
    to learn, and they would otherwise arrive as an untyped ``object`` column), and
    datetime columns (absolute dates do not generalise to future observation dates;
    upstream should express them as ``days_since_*`` numbers instead).
    """
    cols: list[str] = []
    for col in df.columns:
        name = str(col)
        if name in RESERVED_COLUMNS or name.startswith("_"):
            continue
        s = df[col]
        if s.isna().all():
            continue
        if _is_datetime_series(s):
            continue
        cols.append(name)
    return cols


@dataclass
class FeatureSpec:
    """Which columns the model uses and how to encode them.

    ``numeric``: columns cast to float64.  ``categorical``: column -> ordered list of
    the levels seen in training (category codes follow this order).  ``dropped``:
    columns that looked like features but were excluded, with the reason (kept for
    the model metadata so the choice is visible, not silent).
    """

    numeric: list[str]
    categorical: dict[str, list[str]]
    dropped: dict[str, str] = field(default_factory=dict)

    @property
    def columns(self) -> list[str]:
        """Model column order: numerics first, then categoricals."""
        return [*self.numeric, *self.categorical]

    def to_dict(self) -> dict[str, Any]:
        return {
            "numeric": list(self.numeric),
            "categorical": {k: list(v) for k, v in self.categorical.items()},
            "dropped": dict(self.dropped),
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any]) -> "FeatureSpec":
        return cls(
            numeric=list(d["numeric"]),
            categorical={k: list(v) for k, v in d["categorical"].items()},
            dropped=dict(d.get("dropped", {})),
        )


def _as_str_or_none(s: pd.Series) -> list[str | None]:
    """Values as python strings, nulls as None (``astype(str)`` would turn NaN into 'nan')."""
    return [None if pd.isna(v) else str(v) for v in s.astype(object)]


def _str_codes(s: pd.Series) -> tuple[np.ndarray, list[str]] | None:
    """``(codes, distinct strings)`` with ``codes`` -1 for nulls, computed once per distinct value
    rather than per row; None when a value is not a string (then the per-row path decides)."""
    codes, uniques = pd.factorize(s, use_na_sentinel=True)
    values = list(uniques)
    if not all(isinstance(v, str) for v in values):
        return None
    return np.asarray(codes), values


def _levels(s: pd.Series) -> list[str]:
    """Sorted distinct non-null values as strings."""
    fast = _str_codes(s)
    if fast is not None:
        return sorted(set(fast[1]))
    return sorted({v for v in _as_str_or_none(s) if v is not None})


def _categorical(s: pd.Series, levels: list[str]) -> pd.Categorical:
    """``s`` as a Categorical with exactly ``levels``; unseen levels and nulls become NaN."""
    fast = _str_codes(s)
    if fast is not None:
        codes, values = fast
        position = {v: i for i, v in enumerate(levels)}
        lookup = np.array([position.get(v, -1) for v in values] + [-1], dtype=np.int64)
        return pd.Categorical.from_codes(lookup[codes], categories=levels)  # code -1 -> lookup[-1] = -1
    known = set(levels)
    # Map unseen levels to None explicitly: pandas 3 deprecates (and pandas 4 will
    # reject) building a Categorical from values outside its categories.
    return pd.Categorical([v if v in known else None for v in _as_str_or_none(s)], categories=levels)


def fit_feature_spec(df: pd.DataFrame, *, max_levels: int = DEFAULT_MAX_LEVELS) -> FeatureSpec:
    """Decide numeric vs categorical for each feature of a *training* frame.

    Columns that are constant (one value, no nulls) in the training frame are dropped: a
    feature the source lacks (coalesced to 0 upstream) carries no information.  Category levels are the sorted distinct non-null values, so the encoding is
    deterministic and does not depend on row order.
    """
    numeric: list[str] = []
    categorical: dict[str, list[str]] = {}
    dropped: dict[str, str] = {}
    feats = set(feature_columns(df))
    for col in df.columns:
        name = str(col)
        if name in RESERVED_COLUMNS or name.startswith("_"):
            continue
        if name not in feats:
            dropped[name] = "all null" if df[col].isna().all() else "datetime column"
            continue
        s = df[col]
        if s.notna().all() and s.nunique(dropna=True) <= 1:
            # e.g. order counts for a source without orders (coalesced to 0): nothing to learn
            dropped[name] = "constant"
            continue
        if _is_numeric_series(s):
            numeric.append(name)
            continue
        levels = _levels(s)
        if len(levels) > max_levels:
            dropped[name] = f"{len(levels)} distinct values > max_levels={max_levels}"
            continue
        categorical[name] = levels
    return FeatureSpec(numeric=numeric, categorical=categorical, dropped=dropped)


def to_matrix(df: pd.DataFrame, spec: FeatureSpec) -> pd.DataFrame:
    """Encode a frame with a fitted spec: float64 numerics, categories with fixed levels.

    Keeps ``df``'s index.  A feature column missing from ``df`` is an error (schema
    drift between training and scoring should be loud), while extra columns are
    ignored.  Levels not seen in training become NaN.
    """
    missing = [c for c in spec.columns if c not in df.columns]
    if missing:
        raise KeyError(f"frame lacks feature columns the model was trained on: {missing}")
    out: dict[str, pd.Series] = {}
    for col in spec.numeric:
        s = df[col]
        if pd.api.types.is_object_dtype(s) or pd.api.types.is_bool_dtype(s):
            s = s.astype(object).where(s.notna(), np.nan)
        out[col] = pd.to_numeric(s, errors="coerce").astype("float64")
    for col, levels in spec.categorical.items():
        out[col] = pd.Series(_categorical(df[col], levels), index=df.index, name=col)
    return pd.DataFrame(out, index=df.index, columns=spec.columns)
