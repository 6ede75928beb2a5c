"""Train the churn model on the observation table, with honest evaluation.

Evaluation design (why it looks like this):

* **Time split.**  The model is used to score *future* observation dates, so the test
  set is the last labelled observation date and training uses only earlier dates.
  A random row split would leak a customer's own future into training.
* **Early stopping** holds out the last *training* date (trees are fitted on the dates
  before it).  The booster is not refitted afterwards; it is truncated to
  ``best_iteration`` so every prediction path (predict, SHAP contributions, the saved
  model) uses the same trees.
* **Honest fallback.**  A single-snapshot source (one observation date, or churn only
  observed in the final period) cannot support a time split.  Then we fall back to a
  seeded, stratified 75/25 split of *customers* on the latest labelled date and say
  so in ``split["split_method"]``, so nobody mistakes it for an out-of-time estimate.
* **No resampling / class weights**: the output is used as a probability (expected
  churners, revenue at risk), so it has to stay calibrated.
* **Baselines** on the same test rows: a logistic regression and a one-feature rule,
  so the XGBoost numbers have something to be compared against.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from ml import evaluate
from ml.features import (
    DATE_COLUMN,
    ID_COLUMN,
    LABEL_COLUMN,
    VALUE_COLUMN,
    FeatureSpec,
    fit_feature_spec,
    to_matrix,
)

NTHREAD = 2  # the pipeline machine has 2 cores

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary:logistic",
    "eval_metric": "logloss",  # a proper scoring rule, consistent with calibration
    "tree_method": "hist",  # required for native categorical support
    "max_depth": 4,
    "eta": 0.05,
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "min_child_weight": 1.0,
    "lambda": 1.0,
    "max_cat_to_onehot": 4,
    "nthread": NTHREAD,
}
DEFAULT_NUM_BOOST_ROUND = 500
DEFAULT_EARLY_STOPPING_ROUNDS = 30
TEST_FRACTION = 0.25  # fallback split: share of customers held out
VALIDATION_FRACTION = 0.2  # share of training customers held out for early stopping when needed

TIME_SPLIT = "time"
RANDOM_SPLIT_PREFIX = "random_customer_split"


@dataclass
class TrainResult:
    """Everything needed to score, explain, register and report on a trained model.

    ``metrics``: model metrics on the test split (keys of ``evaluate.metrics``).
    ``baselines``: baseline name -> metrics on the same test rows.
    ``split``: how the data was split (``split_method``, dates, rows, positives).
    ``params``: the XGBoost params plus ``num_boost_round`` / ``early_stopping_rounds``.
    ``test_predictions``: customer_id, observation_date, label, churn_probability for
    the test rows (for lift/calibration charts); may be None for a loaded old model.
    """

    booster: xgb.Booster
    feature_spec: FeatureSpec
    features: list[str]
    metrics: dict[str, Any]
    baselines: dict[str, dict[str, Any]]
    split: dict[str, Any]
    params: dict[str, Any]
    best_iteration: int
    trained_at: str
    test_predictions: pd.DataFrame | None = None
    code_version: str | None = None

    @property
    def split_method(self) -> str:
        return str(self.split["split_method"])


def make_dmatrix(frame: pd.DataFrame, spec: FeatureSpec, label: Any = None) -> xgb.DMatrix:
    """DMatrix from an observation frame, encoded with ``spec``."""
    return xgb.DMatrix(
        to_matrix(frame, spec), label=label, enable_categorical=True, nthread=NTHREAD
    )


def _prepare(obs: pd.DataFrame) -> pd.DataFrame:
    """Check the required columns and normalise their types; keep labelled rows only."""
    required = [ID_COLUMN, DATE_COLUMN, LABEL_COLUMN, VALUE_COLUMN]
    missing = [c for c in required if c not in obs.columns]
    if missing:
        raise ValueError(f"observation table lacks required columns: {missing}")
    df = obs.copy()
    df[ID_COLUMN] = df[ID_COLUMN].astype(str)
    df[DATE_COLUMN] = pd.to_datetime(df[DATE_COLUMN])
    # DuckDB gives a nullable Int32 label; float64 turns <NA> into NaN uniformly.
    df[LABEL_COLUMN] = pd.to_numeric(df[LABEL_COLUMN], errors="coerce").astype("float64")
    df = df[df[LABEL_COLUMN].notna()].reset_index(drop=True)
    bad = ~df[LABEL_COLUMN].isin([0.0, 1.0])
    if bad.any():
        raise ValueError(f"label must be 0/1; found {sorted(df.loc[bad, LABEL_COLUMN].unique())[:5]}")
    if df.empty:
        raise ValueError("no labelled rows to train on")
    df[LABEL_COLUMN] = df[LABEL_COLUMN].astype(int)
    return df


def _iso_dates(dates: Any) -> list[str]:
    return [pd.Timestamp(d).date().isoformat() for d in sorted(pd.unique(pd.Series(dates)))]


def _missing_class(labels: pd.Series) -> str | None:
    """Name of the class absent from ``labels`` (None if both present)."""
    present = set(labels.unique().tolist())
    if 1 not in present:
        return "churners"
    if 0 not in present:
        return "non-churners"
    return None


def _time_split_problem(df: pd.DataFrame) -> str | None:
    """Why a time split is impossible, or None if it is fine."""
    dates = sorted(df[DATE_COLUMN].unique())
    if len(dates) < 2:
        return f"only one labelled observation date ({_iso_dates(dates)[0]})"
    last = dates[-1]
    for part_name, part in (("train", df[df[DATE_COLUMN] < last]), ("test", df[df[DATE_COLUMN] == last])):
        absent = _missing_class(part[LABEL_COLUMN])
        if absent:
            span = _iso_dates(part[DATE_COLUMN])
            where = span[0] if len(span) == 1 else f"{span[0]}..{span[-1]}, {len(span)} dates"
            return f"time split would leave no {absent} in {part_name} ({where})"
    return None


def _customer_split(
    df: pd.DataFrame, test_size: float, seed: int
) -> tuple[pd.Series, pd.Series, bool]:
    """Boolean masks (train, test) assigning whole customers to one side.

    Stratified by the customer's label (max over their rows) when each class has at
    least two customers; returns whether stratification was possible.
    """
    from sklearn.model_selection import train_test_split

    cust = df.groupby(ID_COLUMN)[LABEL_COLUMN].max()
    ids = cust.index.to_numpy()
    stratified = cust.nunique() == 2 and cust.value_counts().min() >= 2
    try:
        _, test_ids = train_test_split(
            ids, test_size=test_size, random_state=seed, stratify=cust.to_numpy() if stratified else None
        )
    except ValueError:  # too few customers of a class for the requested test size
        stratified = False
        _, test_ids = train_test_split(ids, test_size=test_size, random_state=seed)
    test_mask = df[ID_COLUMN].isin(set(test_ids))
    return ~test_mask, test_mask, stratified


def _part_info(df: pd.DataFrame, prefix: str) -> dict[str, Any]:
    return {
        f"{prefix}_dates": _iso_dates(df[DATE_COLUMN]),
        f"{prefix}_rows": int(len(df)),
        f"{prefix}_positives": int(df[LABEL_COLUMN].sum()),
        f"{prefix}_customers": int(df[ID_COLUMN].nunique()),
    }


def _logistic_baseline(
    train: pd.DataFrame, test: pd.DataFrame, spec: FeatureSpec
) -> np.ndarray:
    """Logistic regression on the same features: median-imputed standardised numerics,
    one-hot categoricals (missing/unseen levels as their own '(missing)' level)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    def frame(df: pd.DataFrame) -> pd.DataFrame:
        x = to_matrix(df, spec)
        for col in spec.categorical:
            x[col] = x[col].astype(object).where(x[col].notna(), "(missing)")
        return x

    transformers = []
    if spec.numeric:
        transformers.append(
            ("num", make_pipeline(SimpleImputer(strategy="median"), StandardScaler()), spec.numeric)
        )
    if spec.categorical:
        transformers.append(
            ("cat", OneHotEncoder(handle_unknown="ignore"), list(spec.categorical))
        )
    model = Pipeline(
        [("prep", ColumnTransformer(transformers)), ("lr", LogisticRegression(max_iter=2000))]
    )
    model.fit(frame(train), train[LABEL_COLUMN].to_numpy())
    return model.predict_proba(frame(test))[:, 1]


def _rule_baseline(
    train: pd.DataFrame, test: pd.DataFrame, spec: FeatureSpec
) -> tuple[str, str, np.ndarray] | None:
    """A one-feature rule: recency of activity if the source has it, else short tenure.

    Returns (baseline name, description, risk score on test) or None if neither
    feature exists.  Missing values get the training median so they rank mid-pack.
    """
    if "days_since_last_activity" in spec.numeric:
        col, sign, desc = "days_since_last_activity", 1.0, "higher days_since_last_activity = riskier"
    elif "tenure_days" in spec.numeric:
        col, sign, desc = "tenure_days", -1.0, "lower tenure_days = riskier"
    else:
        return None
    tr = to_matrix(train, spec)[col]
    fill = tr.median()
    fill = 0.0 if pd.isna(fill) else float(fill)
    score = sign * to_matrix(test, spec)[col].fillna(fill).to_numpy()
    return f"rule_{col}", desc, score


def train_model(
    obs: pd.DataFrame, *, seed: int = 0, params: dict | None = None
) -> TrainResult:
    """Train and evaluate the churn model on a labelled observation table.

    ``obs`` may contain unlabelled (scoring) rows; they are ignored.  ``params``
    overrides ``DEFAULT_PARAMS`` and may also set ``num_boost_round`` and
    ``early_stopping_rounds``.
    """
    df = _prepare(obs)

    # --- outer split: time if possible, else honest customer-level fallback -------
    problem = _time_split_problem(df)
    if problem is None:
        last = df[DATE_COLUMN].max()
        train = df[df[DATE_COLUMN] < last].reset_index(drop=True)
        test = df[df[DATE_COLUMN] == last].reset_index(drop=True)
        split_method = TIME_SPLIT
    else:
        latest = df[df[DATE_COLUMN] == df[DATE_COLUMN].max()].reset_index(drop=True)
        if _missing_class(latest[LABEL_COLUMN]) or latest[LABEL_COLUMN].value_counts().min() < 2:
            raise ValueError(
                f"cannot train: {problem}, and the latest labelled date does not have at "
                "least two churners and two non-churners for a customer split"
            )
        tr_mask, te_mask, _ = _customer_split(latest, TEST_FRACTION, seed)
        train = latest[tr_mask].reset_index(drop=True)
        test = latest[te_mask].reset_index(drop=True)
        split_method = f"{RANDOM_SPLIT_PREFIX} (single-snapshot data: {problem})"
        if _missing_class(train[LABEL_COLUMN]):
            raise ValueError(f"cannot train: customer split left no {_missing_class(train[LABEL_COLUMN])} in train")

    # --- inner split for early stopping -----------------------------------------
    train_dates = sorted(train[DATE_COLUMN].unique())
    fit = val = None
    if split_method == TIME_SPLIT and len(train_dates) >= 2:
        cand_fit = train[train[DATE_COLUMN] < train_dates[-1]]
        if _missing_class(cand_fit[LABEL_COLUMN]) is None:
            fit, val = cand_fit, train[train[DATE_COLUMN] == train_dates[-1]]
            early_stopping = "time: last training date held out"
    if fit is None:
        f_mask, v_mask, stratified = _customer_split(train, VALIDATION_FRACTION, seed + 1)
        fit, val = train[f_mask], train[v_mask]
        early_stopping = (
            f"random {'stratified ' if stratified else ''}{VALIDATION_FRACTION:.0%} of training customers held out"
        )
    fit = fit.reset_index(drop=True)
    val = val.reset_index(drop=True)

    # --- features: levels fixed on the training rows only ----------------------
    spec = fit_feature_spec(train)
    if not spec.columns:
        raise ValueError("no usable feature columns")

    all_params: dict[str, Any] = {**DEFAULT_PARAMS, "seed": seed, **(params or {})}
    num_boost_round = int(all_params.pop("num_boost_round", DEFAULT_NUM_BOOST_ROUND))
    early_stopping_rounds = int(all_params.pop("early_stopping_rounds", DEFAULT_EARLY_STOPPING_ROUNDS))

    dfit = make_dmatrix(fit, spec, fit[LABEL_COLUMN].to_numpy())
    dval = make_dmatrix(val, spec, val[LABEL_COLUMN].to_numpy())
    full = xgb.train(
        all_params,
        dfit,
        num_boost_round=num_boost_round,
        evals=[(dval, "validation")],
        early_stopping_rounds=early_stopping_rounds,
        verbose_eval=False,
    )
    best_iteration = int(getattr(full, "best_iteration", num_boost_round - 1))
    # Keep only the trees up to the best iteration: later trees were worse on
    # validation, and slicing makes predict/pred_contribs/save agree automatically.
    booster = full[: best_iteration + 1]

    p_test = booster.predict(make_dmatrix(test, spec))
    y_test = test[LABEL_COLUMN].to_numpy()
    model_metrics = evaluate.metrics(y_test, p_test)

    baselines: dict[str, dict[str, Any]] = {
        "logistic_regression": evaluate.metrics(y_test, _logistic_baseline(train, test, spec))
    }
    rule = _rule_baseline(train, test, spec)
    if rule is not None:
        name, desc, score = rule
        baselines[name] = {"rule": desc, **evaluate.ranking_metrics(y_test, score)}

    split = {
        "split_method": split_method,
        **_part_info(train, "train"),
        **_part_info(test, "test"),
        "early_stopping": early_stopping,
        **_part_info(fit, "fit"),
        **_part_info(val, "validation"),
    }
    test_predictions = pd.DataFrame(
        {
            ID_COLUMN: test[ID_COLUMN].to_numpy(),
            DATE_COLUMN: test[DATE_COLUMN].to_numpy(),
            LABEL_COLUMN: y_test,
            "churn_probability": p_test.astype("float64"),
        }
    )
    return TrainResult(
        booster=booster,
        feature_spec=spec,
        features=spec.columns,
        metrics=model_metrics,
        baselines=baselines,
        split=split,
        params={**all_params, "num_boost_round": num_boost_round, "early_stopping_rounds": early_stopping_rounds},
        best_iteration=best_iteration,
        trained_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        test_predictions=test_predictions,
    )
