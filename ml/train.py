"""Train the churn model on the observation table, with an honest backtest.

Evaluation design (why it looks like this):

* **Rolling-origin backtest.**  The model scores *future* observation dates, so it is
  judged the same way: for each of the last ``n_cutoffs`` labelled observation dates
  (the cutoffs), the whole training procedure is run on the observation dates *before*
  the cutoff and tested on the cutoff date.  Each cutoff gives ROC AUC, PR AUC, top-decile
  lift, Brier, ECE and expected (sum of p) vs actual churners.  The headline ``metrics``
  are the means over the cutoffs.
* **Single-snapshot fallback.**  A source where churn is only observed in one period (IBM
  Telco: every churner ends on the snapshot date) has no history to backtest on.  Then the
  procedure is evaluated by stratified k-fold cross-validation of *customers* on the last
  labelled date, and ``split_method`` says so, so nobody mistakes it for an out-of-time
  estimate.
* **Baselines on the same splits**: a logistic regression on the same features and a
  one-line rule (recency of activity for non-contractual churn; contract type, then short
  tenure, for contractual churn).  The quality gate (``ml.gate``) compares against them.
* **Inside each training run** (``fit_model``): the trees are fitted on the older dates and
  the most recent training date is the validation slice (held-out customers for a
  single-snapshot source).  The validation slice drives early stopping, picks one of a handful
  of hyper-parameter configurations (by validation log loss) and fits the calibration map
  (``ml.calibration``).  The booster is truncated to ``best_iteration`` so prediction,
  SHAP contributions and the saved model all use the same trees.
* **No resampling / class weights**: the output is used as a probability (expected churners,
  MRR at risk, CLV), so it has to stay calibrated.
* **The production model** is the same procedure run on all labelled data (validation slice =
  the latest labelled date), so the backtest estimates exactly what is deployed.
"""

from __future__ import annotations

import math
import os
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import numpy as np
import pandas as pd
import xgboost as xgb

from ml import evaluate
from ml.calibration import Calibrator, choose_calibrator
from ml.features import (
    DATE_COLUMN,
    ID_COLUMN,
    LABEL_COLUMN,
    VALUE_COLUMN,
    FeatureSpec,
    fit_feature_spec,
    to_matrix,
)

# One thread.  The pipeline machine has 2 cores shared with dbt, DuckDB and other jobs, and
# there OpenMP's thread barriers cost more than the second core saves: measured on CDNOW,
# 100 rounds on 120k rows took 1.1 s with one thread and 2.5-6.6 s with two; on 2,000 rows
# 0.05 s against up to 3 s.
NTHREAD = 1

DEFAULT_PARAMS: dict[str, Any] = {
    "objective": "binary:logistic",
    "eval_metric": "logloss",  # a proper scoring rule, consistent with calibration
    "tree_method": "hist",  # required for native categorical support
    "subsample": 0.8,
    "colsample_bytree": 0.8,
    "max_cat_to_onehot": 4,
    "nthread": NTHREAD,
}
# The hyper-parameter search: a handful of configurations from "additive" (depth-1 stumps,
# close to a GAM, good on small data) to deeper, more regularised trees.  Each is early-stopped
# on the validation slice; the lowest validation log loss wins.
SEARCH_SPACE: tuple[dict[str, Any], ...] = (
    {"max_depth": 1, "eta": 0.2, "min_child_weight": 1.0, "lambda": 1.0},
    {"max_depth": 2, "eta": 0.1, "min_child_weight": 1.0, "lambda": 1.0},
    {"max_depth": 3, "eta": 0.1, "min_child_weight": 5.0, "lambda": 1.0},
    {"max_depth": 4, "eta": 0.1, "min_child_weight": 10.0, "lambda": 5.0},
    {"max_depth": 6, "eta": 0.1, "min_child_weight": 20.0, "lambda": 10.0},
)
DEFAULT_NUM_BOOST_ROUND = 600
DEFAULT_EARLY_STOPPING_ROUNDS = 30
DEFAULT_N_CUTOFFS = 3  # rolling-origin backtest cutoffs
DEFAULT_CV_FOLDS = 5  # single-snapshot fallback
VALIDATION_FRACTION = 0.2  # share of training customers held out when there is no later date

TIME_SPLIT = "rolling_origin_backtest"
CV_SPLIT = "stratified_customer_cv"

MODEL_NAME = "xgboost"
LOGISTIC = "logistic_regression"


@dataclass
class FittedModel:
    """One run of the training procedure: booster + calibration + what was chosen and why."""

    booster: xgb.Booster
    feature_spec: FeatureSpec
    calibrator: Calibrator
    best_iteration: int
    params: dict[str, Any]
    search: list[dict[str, Any]]
    inner_split: dict[str, Any]

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        raw = self.booster.predict(make_dmatrix(frame, self.feature_spec)).astype("float64")
        return self.calibrator.apply(raw)


@dataclass
class TrainResult:
    """Everything needed to score, explain, register and report on a trained model.

    ``metrics``: the model's backtest summary (mean of each score over the backtest splits;
    ``n``, ``positives``, ``expected_churners`` and ``actual_churners`` are totals;
    ``pooled_expected_calibration_error`` is the ECE of all backtest predictions together).
    ``baselines``: baseline name -> the same summary on the same splits.
    ``backtest``: method, description and one record per split (cutoff or fold).
    ``split``: ``split_method`` plus how the production model's training rows were split.
    ``params``: the chosen XGBoost params plus ``num_boost_round`` / ``early_stopping_rounds``.
    ``test_predictions``: the backtest's out-of-time (or out-of-fold) predictions with a
    ``split`` column, for lift/calibration charts; may be None for a loaded old model.
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
    calibrator: Calibrator = field(default_factory=Calibrator)
    backtest: dict[str, Any] = field(default_factory=dict)
    search: list[dict[str, Any]] = field(default_factory=list)
    training_window: dict[str, Any] = field(default_factory=dict)
    feature_importance: list[dict[str, Any]] = field(default_factory=list)
    gate_thresholds: dict[str, Any] = field(default_factory=dict)

    @property
    def split_method(self) -> str:
        return str(self.split["split_method"])

    def predict_proba(self, frame: pd.DataFrame) -> np.ndarray:
        """Calibrated churn probability per row of an observation-shaped frame."""
        if len(frame) == 0:
            return np.empty(0)
        raw = self.booster.predict(make_dmatrix(frame, self.feature_spec)).astype("float64")
        return self.calibrator.apply(raw)


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
    # A fixed row order: the warehouse returns rows in no particular order, and row order
    # decides which rows XGBoost subsamples and how the folds fall, so without this the same
    # data and seed would give a (slightly) different model on every run.
    return df.sort_values([DATE_COLUMN, ID_COLUMN], kind="stable").reset_index(drop=True)


def _iso(d: Any) -> str:
    return pd.Timestamp(d).date().isoformat()


def _iso_dates(dates: Any) -> list[str]:
    return [_iso(d) for d in sorted(pd.unique(pd.Series(dates)))]


def _missing_class(labels: pd.Series) -> str | None:
    """Name of the class absent from ``labels`` (None if both present)."""
    present = set(labels.unique().tolist())
    if 1 not in present:
        return "churners"
    if 0 not in present:
        return "non-churners"
    return None


def _part_info(df: pd.DataFrame, prefix: str) -> dict[str, Any]:
    return {
        f"{prefix}_dates": _iso_dates(df[DATE_COLUMN]),
        f"{prefix}_rows": int(len(df)),
        f"{prefix}_positives": int(df[LABEL_COLUMN].sum()),
        f"{prefix}_customers": int(df[ID_COLUMN].nunique()),
    }


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


# --------------------------------------------------------------------------------------
# One run of the training procedure
# --------------------------------------------------------------------------------------


def _inner_split(train: pd.DataFrame, *, time_ordered: bool, seed: int) -> tuple[pd.DataFrame, pd.DataFrame, dict]:
    """Fit rows (trees) and validation rows (early stopping, search, calibration)."""
    dates = sorted(train[DATE_COLUMN].unique())
    if time_ordered and len(dates) >= 2:
        fit = train[train[DATE_COLUMN] < dates[-1]]
        val = train[train[DATE_COLUMN] == dates[-1]]
        if _missing_class(fit[LABEL_COLUMN]) is None:
            info = {"validation": "time: the latest training date", **_part_info(fit, "fit"), **_part_info(val, "validation")}
            return fit.reset_index(drop=True), val.reset_index(drop=True), info
    f_mask, v_mask, stratified = _customer_split(train, VALIDATION_FRACTION, seed + 1)
    fit, val = train[f_mask], train[v_mask]
    info = {
        "validation": f"random {'stratified ' if stratified else ''}{VALIDATION_FRACTION:.0%} of training customers",
        **_part_info(fit, "fit"),
        **_part_info(val, "validation"),
    }
    return fit.reset_index(drop=True), val.reset_index(drop=True), info


def fit_model(
    train: pd.DataFrame,
    *,
    time_ordered: bool,
    seed: int = 0,
    params: dict[str, Any] | None = None,
    search_space: tuple[dict[str, Any], ...] | list[dict[str, Any]] | None = None,
) -> FittedModel:
    """Run the training procedure on labelled rows ``train``.

    ``params`` is applied on top of every search configuration and may also set
    ``num_boost_round`` / ``early_stopping_rounds``.
    """
    if _missing_class(train[LABEL_COLUMN]):
        raise ValueError(f"cannot train: no {_missing_class(train[LABEL_COLUMN])} in the training rows")
    fit, val, inner = _inner_split(train, time_ordered=time_ordered, seed=seed)
    if _missing_class(fit[LABEL_COLUMN]):
        raise ValueError(f"cannot train: no {_missing_class(fit[LABEL_COLUMN])} in the fit rows")

    spec = fit_feature_spec(train)
    if not spec.columns:
        raise ValueError("no usable feature columns")

    extra = dict(params or {})
    num_boost_round = int(extra.pop("num_boost_round", DEFAULT_NUM_BOOST_ROUND))
    early_stopping_rounds = int(extra.pop("early_stopping_rounds", DEFAULT_EARLY_STOPPING_ROUNDS))
    dfit = make_dmatrix(fit, spec, fit[LABEL_COLUMN].to_numpy())
    dval = make_dmatrix(val, spec, val[LABEL_COLUMN].to_numpy())

    best: tuple[float, int, xgb.Booster, dict[str, Any], int] | None = None
    search: list[dict[str, Any]] = []
    for i, config in enumerate(search_space or SEARCH_SPACE):
        all_params = {**DEFAULT_PARAMS, **config, "seed": seed, **extra}
        booster = xgb.train(
            all_params,
            dfit,
            num_boost_round=num_boost_round,
            evals=[(dval, "validation")],
            early_stopping_rounds=early_stopping_rounds,
            verbose_eval=False,
        )
        it = int(booster.best_iteration)
        score = float(booster.best_score)
        search.append({"config": i, **config, "best_iteration": it, "validation_log_loss": score})
        if best is None or score < best[0] - 1e-12:  # ties keep the earlier (simpler) configuration
            best = (score, it, booster, all_params, i)
    assert best is not None
    _, best_iteration, full, chosen, chosen_index = best
    for row in search:
        row["chosen"] = row["config"] == chosen_index
    # Keep only the trees up to the best iteration: later trees were worse on validation,
    # and slicing makes predict / pred_contribs / save agree automatically.
    booster = full[: best_iteration + 1]
    raw_val = booster.predict(dval).astype("float64")
    calibrator = choose_calibrator(val[LABEL_COLUMN].to_numpy(), raw_val, seed=seed)
    return FittedModel(
        booster=booster,
        feature_spec=spec,
        calibrator=calibrator,
        best_iteration=best_iteration,
        params={**chosen, "num_boost_round": num_boost_round, "early_stopping_rounds": early_stopping_rounds},
        search=search,
        inner_split=inner,
    )


# --------------------------------------------------------------------------------------
# Baselines
# --------------------------------------------------------------------------------------


def logistic_baseline(train: pd.DataFrame, test: pd.DataFrame) -> np.ndarray:
    """Logistic regression on the same features: median-imputed standardised numerics,
    one-hot categoricals (missing/unseen levels as their own '(missing)' level)."""
    from sklearn.compose import ColumnTransformer
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline, make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler

    spec = fit_feature_spec(train)

    def frame(df: pd.DataFrame) -> pd.DataFrame:
        x = to_matrix(df, spec)
        for col in spec.categorical:
            x[col] = x[col].astype(object).where(x[col].notna(), "(missing)")
        return x

    transformers = []
    if spec.numeric:
        transformers.append(
            ("num", make_pipeline(SimpleImputer(strategy="median", keep_empty_features=True), StandardScaler()),
             spec.numeric)
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


CONTRACT_COLUMNS = ("contract", "contract_type", "contract_length", "billing_cycle")


def _contract_column(spec: FeatureSpec) -> str | None:
    """The categorical feature that says what kind of contract a customer has: a column named
    like a contract, else the current plan (plans often encode monthly vs annual terms)."""
    for name in CONTRACT_COLUMNS:
        if name in spec.categorical:
            return name
    named = next((c for c in spec.categorical if "contract" in c), None)
    if named is not None:
        return named
    return "current_plan" if "current_plan" in spec.categorical else None


def rule_baseline(
    train: pd.DataFrame, test: pd.DataFrame, *, contractual: bool
) -> tuple[str, str, np.ndarray] | None:
    """A one-line rule; returns (baseline name, description, risk score on test) or None.

    * non-contractual: ``days_since_last_activity`` (longer since the last activity = riskier);
    * contractual: the contract type with the higher training churn rate is riskier, ties
      (same contract type) broken by shorter ``tenure_days``; with no contract column, short
      tenure alone.

    Missing numbers get the training median so they rank mid-pack.
    """
    spec = fit_feature_spec(train)

    def numeric(col: str) -> tuple[np.ndarray, np.ndarray]:
        tr = to_matrix(train, spec)[col]
        fill = tr.median()
        fill = 0.0 if pd.isna(fill) else float(fill)
        return tr.fillna(fill).to_numpy(), to_matrix(test, spec)[col].fillna(fill).to_numpy()

    contract = _contract_column(spec) if contractual else None
    if not contractual and "days_since_last_activity" in spec.numeric:
        _, te = numeric("days_since_last_activity")
        return "rule_recency", "higher days_since_last_activity = riskier", te
    if contract is not None:
        tr_level = to_matrix(train, spec)[contract].astype(object).where(lambda s: s.notna(), "(missing)")
        te_level = to_matrix(test, spec)[contract].astype(object).where(lambda s: s.notna(), "(missing)")
        rates = train[LABEL_COLUMN].groupby(tr_level.to_numpy()).mean()
        overall = float(train[LABEL_COLUMN].mean())
        # dense rank of the level's training churn rate: 0 = safest contract type
        rank = rates.rank(method="dense").astype(float) - 1.0
        te_rank = np.array([rank.get(v, np.nan) for v in te_level], dtype="float64")
        # a level unseen in training ranks like the overall churn rate would
        unseen_rank = float((rates < overall).sum()) - 0.5
        te_rank = np.where(np.isnan(te_rank), unseen_rank, te_rank)
        score = te_rank
        desc = f"{contract} with the higher training churn rate = riskier"
        if "tenure_days" in spec.numeric:
            tr_ten, te_ten = numeric("tenure_days")
            top = max(float(np.max(tr_ten, initial=0.0)), float(np.max(te_ten, initial=0.0))) + 1.0
            # shortness in [0, 1): only orders customers within one contract type
            score = te_rank + (1.0 - np.clip(te_ten, 0.0, top - 1.0) / top)
            desc += ", then shorter tenure_days"
        return "rule_contract_tenure", desc, score
    if "tenure_days" in spec.numeric:
        _, te = numeric("tenure_days")
        return "rule_tenure", "lower tenure_days = riskier", -te
    return None


# --------------------------------------------------------------------------------------
# Backtest plan
# --------------------------------------------------------------------------------------


@dataclass
class BacktestPlan:
    method: str  # TIME_SPLIT or CV_SPLIT
    description: str
    splits: list[tuple[str, pd.DataFrame, pd.DataFrame]]  # (name, train, test)
    final_train: pd.DataFrame
    time_ordered: bool


def _time_cutoffs(df: pd.DataFrame, n_cutoffs: int) -> tuple[list[Any], list[str]]:
    """The latest ``n_cutoffs`` usable cutoff dates (oldest first) and why others were skipped.

    A cutoff is usable when the test date has churners and non-churners and the training
    dates before it include at least two dates (fit + validation) with both classes in the fit part.
    """
    dates = sorted(df[DATE_COLUMN].unique())
    chosen: list[Any] = []
    skipped: list[str] = []
    for cut in reversed(dates):
        if len(chosen) == n_cutoffs:
            break
        train_dates = [d for d in dates if d < cut]
        test = df[df[DATE_COLUMN] == cut]
        if len(train_dates) < 2:
            skipped.append(f"{_iso(cut)}: fewer than two earlier dates")
            continue
        fit = df[df[DATE_COLUMN] < train_dates[-1]]
        for part_name, part in (("test", test), ("fit", fit)):
            absent = _missing_class(part[LABEL_COLUMN])
            if absent:
                skipped.append(f"{_iso(cut)}: no {absent} in {part_name}")
                break
        else:
            chosen.append(cut)
    return sorted(chosen), skipped


def plan_backtest(df: pd.DataFrame, *, n_cutoffs: int, cv_folds: int, seed: int) -> BacktestPlan:
    """Rolling-origin cutoffs when the history allows it, else stratified customer k-fold CV."""
    cutoffs, skipped = _time_cutoffs(df, n_cutoffs)
    if len(cutoffs) >= n_cutoffs:
        splits = [
            (_iso(c), df[df[DATE_COLUMN] < c].reset_index(drop=True), df[df[DATE_COLUMN] == c].reset_index(drop=True))
            for c in cutoffs
        ]
        desc = (f"rolling-origin backtest over {len(cutoffs)} cutoffs ({', '.join(_iso(c) for c in cutoffs)}): "
                "for each cutoff the full training procedure (search, early stopping, calibration) is run on the "
                "observation dates before it and tested on the cutoff date")
        return BacktestPlan(TIME_SPLIT, desc, splits, df, time_ordered=True)

    from sklearn.model_selection import StratifiedKFold

    last = df[DATE_COLUMN].max()
    latest = df[df[DATE_COLUMN] == last].reset_index(drop=True)
    counts = latest[LABEL_COLUMN].value_counts()
    if _missing_class(latest[LABEL_COLUMN]) or counts.min() < cv_folds:
        raise ValueError(
            f"cannot train: only {len(cutoffs)} usable backtest cutoffs ({'; '.join(skipped[:3]) or 'too few dates'}), "
            f"and the latest labelled date ({_iso(last)}) does not have {cv_folds} churners and {cv_folds} "
            "non-churners for a cross-validation"
        )
    reason = (f"single-snapshot data: only {len(cutoffs)} of the {n_cutoffs} backtest cutoffs are usable"
              + (f" ({'; '.join(skipped[:2])}{'; ...' if len(skipped) > 2 else ''})" if skipped else ""))
    desc = (f"stratified {cv_folds}-fold cross-validation of customers on the last labelled date {_iso(last)} "
            f"({reason}); a time backtest is impossible, so this is NOT an out-of-time estimate")
    # one row per customer on one date: a stratified row split is a split of customers
    skf = StratifiedKFold(n_splits=cv_folds, shuffle=True, random_state=seed)
    splits = [
        (f"fold {k + 1}", latest.iloc[tr].reset_index(drop=True), latest.iloc[te].reset_index(drop=True))
        for k, (tr, te) in enumerate(skf.split(np.zeros(len(latest)), latest[LABEL_COLUMN].to_numpy()))
    ]
    return BacktestPlan(f"{CV_SPLIT} ({reason})", desc, splits, latest, time_ordered=False)


# --------------------------------------------------------------------------------------
# Summaries
# --------------------------------------------------------------------------------------

_MEAN_KEYS = ("base_rate", "roc_auc", "pr_auc", "top_decile_lift", "brier", "expected_calibration_error")
_SUM_KEYS = ("n", "positives", "expected_churners", "actual_churners")


def summarize(per_split: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean of each score over the splits (ignoring undefined ones); totals for the counts."""
    out: dict[str, Any] = {}
    for key in _MEAN_KEYS:
        vals = [float(m[key]) for m in per_split if key in m and m[key] is not None and not math.isnan(float(m[key]))]
        if any(key in m for m in per_split):
            out[key] = float(np.mean(vals)) if vals else float("nan")
    for key in _SUM_KEYS:
        if all(key in m for m in per_split):
            out[key] = float(sum(m[key] for m in per_split)) if key == "expected_churners" else int(sum(m[key] for m in per_split))
    if "expected_churners" in out and out.get("actual_churners"):
        out["expected_vs_actual_pct"] = 100.0 * (out["expected_churners"] - out["actual_churners"]) / out["actual_churners"]
    if any("rule" in m for m in per_split):
        out["rule"] = next(m["rule"] for m in per_split if "rule" in m)
    out["splits"] = len(per_split)
    return out


def _fmt_auc(value: Any) -> str:
    return "n/a" if value is None or math.isnan(float(value)) else f"{float(value):.3f}"


def global_importance(booster: xgb.Booster, features: list[str]) -> list[dict[str, Any]]:
    """Share of the total gain per feature (0 for features never split on), largest first."""
    gain = booster.get_score(importance_type="total_gain")
    total = float(sum(gain.values())) or 1.0
    rows = [{"feature": f, "gain_share": float(gain.get(f, 0.0)) / total} for f in features]
    return sorted(rows, key=lambda r: (-r["gain_share"], r["feature"]))


# --------------------------------------------------------------------------------------
# Entry point
# --------------------------------------------------------------------------------------

FitFn = Callable[..., FittedModel]


def train_model(
    obs: pd.DataFrame,
    *,
    seed: int = 0,
    params: dict | None = None,
    search_space: tuple[dict[str, Any], ...] | list[dict[str, Any]] | None = None,
    n_cutoffs: int = DEFAULT_N_CUTOFFS,
    cv_folds: int = DEFAULT_CV_FOLDS,
    contractual: bool | None = None,
    gate_thresholds: dict[str, Any] | None = None,
    fit_fn: FitFn = fit_model,
    progress: Callable[[str], None] | None = None,
) -> TrainResult:
    """Backtest the training procedure, then run it on all labelled rows for production.

    ``obs`` may contain unlabelled (scoring) rows; they are ignored.  ``contractual`` picks
    the rule baseline (None = contractual when the frame has subscription MRR).  ``fit_fn``
    is the training procedure (``fit_model``); tests swap in a deliberately bad one.
    ``progress``, when given, is called once per backtest split (cutoff or fold) with a short
    line such as ``backtest cutoff 2/3 2024-11-01: AUC 0.937, 24.1 s``.
    """
    from ml.gate import GateThresholds

    df = _prepare(obs)
    plan = plan_backtest(df, n_cutoffs=n_cutoffs, cv_folds=cv_folds, seed=seed)
    if contractual is None:
        contractual = "mrr_current" in df.columns and pd.to_numeric(df["mrr_current"], errors="coerce").notna().any()

    records: list[dict[str, Any]] = []
    model_metrics: list[dict[str, Any]] = []
    baseline_metrics: dict[str, list[dict[str, Any]]] = {}
    predictions: list[pd.DataFrame] = []
    for index, (name, train, test) in enumerate(plan.splits, start=1):
        split_started = time.perf_counter()
        fitted = fit_fn(train, time_ordered=plan.time_ordered, seed=seed, params=params, search_space=search_space)
        y = test[LABEL_COLUMN].to_numpy()
        p = fitted.predict_proba(test)
        m = evaluate.metrics(y, p)
        b: dict[str, dict[str, Any]] = {LOGISTIC: evaluate.metrics(y, logistic_baseline(train, test))}
        rule = rule_baseline(train, test, contractual=bool(contractual))
        if rule is not None:
            rname, desc, score = rule
            b[rname] = {"rule": desc, **evaluate.ranking_metrics(y, score)}
        model_metrics.append(m)
        for k, v in b.items():
            baseline_metrics.setdefault(k, []).append(v)
        records.append({
            "split": name,
            "train_dates": [_iso(train[DATE_COLUMN].min()), _iso(train[DATE_COLUMN].max())],
            "train_rows": int(len(train)),
            "test_rows": int(len(test)),
            "test_positives": int(y.sum()),
            "model": m,
            "baselines": b,
            "expected_vs_actual_pct": (100.0 * (m["expected_churners"] - m["actual_churners"]) / m["actual_churners"]
                                       if m["actual_churners"] else float("nan")),
            "chosen_config": next((r["config"] for r in fitted.search if r.get("chosen")), None),
            "best_iteration": fitted.best_iteration,
            "calibration": fitted.calibrator.method,
        })
        predictions.append(pd.DataFrame({
            ID_COLUMN: test[ID_COLUMN].to_numpy(),
            DATE_COLUMN: test[DATE_COLUMN].to_numpy(),
            LABEL_COLUMN: y,
            "churn_probability": p.astype("float64"),
            "split": name,
        }))
        if progress is not None:
            label = f"cutoff {index}/{len(plan.splits)} {name}" if plan.time_ordered else f"{name} of {len(plan.splits)}"
            progress(f"backtest {label}: AUC {_fmt_auc(m.get('roc_auc'))}, "
                     f"{time.perf_counter() - split_started:.1f} s")

    pooled = pd.concat(predictions, ignore_index=True)
    summary = summarize(model_metrics)
    # ECE of all backtest predictions together: the gate's calibration figure (a few hundred
    # test rows per split would otherwise fail on bin noise alone)
    summary["pooled_expected_calibration_error"] = evaluate.expected_calibration_error(
        pooled[LABEL_COLUMN].to_numpy(), pooled["churn_probability"].to_numpy())
    final = fit_fn(plan.final_train, time_ordered=plan.time_ordered, seed=seed, params=params, search_space=search_space)
    spec = final.feature_spec
    window = {
        "observation_dates": [_iso(plan.final_train[DATE_COLUMN].min()), _iso(plan.final_train[DATE_COLUMN].max())],
        "rows": int(len(plan.final_train)),
        "positives": int(plan.final_train[LABEL_COLUMN].sum()),
        "customers": int(plan.final_train[ID_COLUMN].nunique()),
    }
    split = {"split_method": plan.method, "backtest": plan.description, **final.inner_split}
    return TrainResult(
        booster=final.booster,
        feature_spec=spec,
        features=spec.columns,
        metrics=summary,
        baselines={k: summarize(v) for k, v in baseline_metrics.items()},
        split=split,
        params=final.params,
        best_iteration=final.best_iteration,
        trained_at=datetime.now(timezone.utc).isoformat(timespec="seconds"),
        test_predictions=pooled,
        calibrator=final.calibrator,
        backtest={"method": plan.method, "description": plan.description, "splits": records},
        search=final.search,
        training_window=window,
        feature_importance=global_importance(final.booster, spec.columns),
        gate_thresholds=(gate_thresholds or GateThresholds().to_dict()),
    )
