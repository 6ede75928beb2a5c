"""A file-system model registry: one immutable, versioned folder per trained model.

Layout::

    models_dir/
      20250131T120000Z-1a2b3c4d/
        model.json            # booster.save_model (XGBoost JSON, exact round trip)
        metadata.json         # metrics, backtest, baselines, feature spec + levels, calibration,
                              # training window, params + search, code version, gate thresholds
        test_predictions.csv  # backtest (out-of-time / out-of-fold) predictions, for charts
        gate.json             # written after the quality gate: {"passed": true|false, ...}
      scoring_history/
        20250131T120500123456Z.parquet   # one scoring run: churn_probability + model features
        20250131T120500123456Z.json      # its model version and PSI against the run before

The folder is written under a dot-prefixed temp name inside ``models_dir`` (same
filesystem) and then renamed with ``os.replace``, which is atomic: a crash leaves at
worst an ignored ``.tmp-*`` folder, never a half-written model that
``latest_model`` could pick up.  Model folders are never modified after that, except for
the gate sidecar ``gate.json`` (also written atomically).  Older models are kept;
``latest_passing_model`` is the newest one whose gate passed, which is what scoring uses.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import shutil
import tempfile
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

import pandas as pd
import xgboost as xgb

from ml.calibration import Calibrator
from ml.features import DATE_COLUMN, FeatureSpec
from ml.train import NTHREAD, TrainResult

MODEL_FILE = "model.json"
METADATA_FILE = "metadata.json"
PREDICTIONS_FILE = "test_predictions.csv"
GATE_FILE = "gate.json"
SCORING_DIR = "scoring_history"
FORMAT_VERSION = 2


def _json_safe(obj: Any) -> Any:
    """NaN/inf -> None (strict JSON has no NaN); numpy scalars -> python scalars."""
    if isinstance(obj, dict):
        return {str(k): _json_safe(v) for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_json_safe(v) for v in obj]
    if hasattr(obj, "item") and not isinstance(obj, (str, bytes)):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        return None
    return obj


def _fsync_file(path: Path) -> None:
    with open(path, "rb") as fh:
        os.fsync(fh.fileno())


def _write_json_atomic(path: Path, payload: Any) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}-")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as fh:
            fh.write(json.dumps(_json_safe(payload), indent=2, allow_nan=False))
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_model(
    result: TrainResult, models_dir: Path, *, code_version: str, extra_metadata: dict[str, Any] | None = None
) -> Path:
    """Write ``result`` to a new ``models_dir/<UTC timestamp>-<short hash>/`` folder.

    The short hash is the first 8 hex digits of the SHA-256 of ``model.json``, so the
    name identifies the exact trees.  ``extra_metadata`` (e.g. the churn definition and
    label lead the observation table was built with) is stored under ``context``.
    Returns the final folder path.
    """
    models_dir = Path(models_dir)
    models_dir.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=".tmp-", dir=models_dir))
    try:
        model_path = tmp / MODEL_FILE
        result.booster.save_model(str(model_path))
        digest = hashlib.sha256(model_path.read_bytes()).hexdigest()
        metadata = {
            "format_version": FORMAT_VERSION,
            "code_version": code_version,
            "trained_at": result.trained_at,
            "saved_at": datetime.now(timezone.utc).isoformat(timespec="microseconds"),
            "xgboost_version": xgb.__version__,
            "model_sha256": digest,
            "best_iteration": result.best_iteration,
            "features": list(result.features),
            "feature_spec": result.feature_spec.to_dict(),
            "feature_importance": result.feature_importance,
            "metrics": result.metrics,
            "baselines": result.baselines,
            "backtest": result.backtest,
            "split": result.split,
            "training_window": result.training_window,
            "calibration": result.calibrator.to_dict(),
            "params": result.params,
            "search": result.search,
            "gate_thresholds": result.gate_thresholds,
            "context": dict(extra_metadata or {}),
        }
        (tmp / METADATA_FILE).write_text(
            json.dumps(_json_safe(metadata), indent=2, allow_nan=False), encoding="utf-8"
        )
        if result.test_predictions is not None:
            result.test_predictions.to_csv(tmp / PREDICTIONS_FILE, index=False)
        for f in tmp.iterdir():
            _fsync_file(f)

        stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%SZ")
        base = f"{stamp}-{digest[:8]}"
        final = models_dir / base
        suffix = 1
        while final.exists():  # same model saved twice within one second
            final = models_dir / f"{base}-{suffix}"
            suffix += 1
        os.replace(tmp, final)
        return final
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise


def load_model(path: Path) -> TrainResult:
    """Load a model folder written by :func:`save_model`.

    Metric values that were NaN at training time come back as None (JSON has no NaN).
    """
    path = Path(path)
    meta = json.loads((path / METADATA_FILE).read_text(encoding="utf-8"))
    booster = xgb.Booster()
    booster.load_model(str(path / MODEL_FILE))
    booster.set_param({"nthread": NTHREAD})
    preds_path = path / PREDICTIONS_FILE
    test_predictions = None
    if preds_path.exists():
        test_predictions = pd.read_csv(preds_path, dtype={"customer_id": str})
        test_predictions[DATE_COLUMN] = pd.to_datetime(test_predictions[DATE_COLUMN])
    return TrainResult(
        booster=booster,
        feature_spec=FeatureSpec.from_dict(meta["feature_spec"]),
        features=list(meta["features"]),
        metrics=meta["metrics"],
        baselines=meta["baselines"],
        split=meta["split"],
        params=meta["params"],
        best_iteration=int(meta["best_iteration"]),
        trained_at=meta["trained_at"],
        test_predictions=test_predictions,
        code_version=meta.get("code_version"),
        calibrator=Calibrator.from_dict(meta.get("calibration")),
        backtest=meta.get("backtest") or {},
        search=meta.get("search") or [],
        training_window=meta.get("training_window") or {},
        feature_importance=meta.get("feature_importance") or [],
        gate_thresholds=meta.get("gate_thresholds") or {},
    )


def read_metadata(path: Path) -> dict[str, Any]:
    return json.loads((Path(path) / METADATA_FILE).read_text(encoding="utf-8"))


def list_models(models_dir: Path) -> list[Path]:
    """Complete model folders, oldest first.

    Temp folders (dot-prefixed) and folders missing either file are ignored.  Order is the
    UTC timestamp in the name, then the microsecond ``saved_at`` in the metadata (two models
    saved within one second), then the name.
    """
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        return []
    candidates = [
        p
        for p in models_dir.iterdir()
        if p.is_dir()
        and not p.name.startswith(".")
        and (p / MODEL_FILE).is_file()
        and (p / METADATA_FILE).is_file()
    ]

    def key(p: Path) -> tuple[str, str, str]:
        try:
            saved = str(read_metadata(p).get("saved_at") or "")
        except (OSError, ValueError):
            saved = ""
        return (p.name[:16], saved, p.name)

    return sorted(candidates, key=key)


def latest_model(models_dir: Path) -> Path | None:
    """Newest complete model folder, whatever its gate result (None if there is none)."""
    models = list_models(models_dir)
    return models[-1] if models else None


def record_gate(path: Path, decision: dict[str, Any]) -> Path:
    """Write the gate result next to the model (``gate.json``, atomic).  ``decision`` must
    hold ``passed``; the time of the decision is added."""
    if "passed" not in decision:
        raise ValueError("gate decision must contain 'passed'")
    payload = {**decision, "passed": bool(decision["passed"]),
               "decided_at": datetime.now(timezone.utc).isoformat(timespec="seconds")}
    target = Path(path) / GATE_FILE
    _write_json_atomic(target, payload)
    return target


def read_gate(path: Path) -> dict[str, Any] | None:
    """The recorded gate result of a model folder, or None when the gate has not run."""
    target = Path(path) / GATE_FILE
    if not target.is_file():
        return None
    return json.loads(target.read_text(encoding="utf-8"))


def latest_passing_model(models_dir: Path) -> Path | None:
    """Newest model folder whose recorded gate passed; models without a gate result or with a
    failed one are skipped (and kept on disk)."""
    for path in reversed(list_models(models_dir)):
        gate = read_gate(path)
        if gate is not None and gate.get("passed") is True:
            return path
    return None


def reusable_model(
    models_dir: Path, *, max_age_days: float, now: datetime, context: dict[str, Any], code_version: str,
    columns: list[str],
) -> tuple[Path | None, str]:
    """The newest passing model a run may serve again instead of training, and why (or why not).

    Reused only when it was trained less than ``max_age_days`` before ``now`` (0 = never reuse),
    by the same code version, for the same ``context`` (source, churn definition, period grain,
    label lead: every key given must match its stored context), and every feature it uses is
    still a column of the observation table (``columns``).
    """
    if max_age_days <= 0:
        return None, "retraining every run (CHURN_RETRAIN_DAYS=0)"
    path = latest_passing_model(models_dir)
    if path is None:
        return None, "no model has passed the quality gate yet"
    meta = read_metadata(path)
    trained = datetime.fromisoformat(str(meta["trained_at"]).replace("Z", "+00:00"))
    if trained.tzinfo is None:
        trained = trained.replace(tzinfo=timezone.utc)
    age_days = (now - trained).total_seconds() / 86400
    if age_days >= max_age_days:
        return None, f"{path.name} is {age_days:.1f} days old (CHURN_RETRAIN_DAYS={max_age_days:g})"
    if meta.get("code_version") != code_version:
        return None, f"{path.name} was trained by code {meta.get('code_version')}, this is {code_version}"
    stored = meta.get("context") or {}
    changed = sorted(k for k, v in context.items() if stored.get(k) != v)
    if changed:
        return None, f"{path.name} was trained with other {', '.join(changed)}"
    missing = sorted(set(meta.get("features") or []) - set(columns))
    if missing:
        return None, f"{path.name} uses features no longer in the observation table: {', '.join(missing[:5])}"
    return path, f"{path.name} passed the gate and is {age_days:.1f} days old (< CHURN_RETRAIN_DAYS={max_age_days:g})"


# --- scoring history (the reference distribution for drift) --------------------------


def save_scoring_snapshot(models_dir: Path, frame: pd.DataFrame, info: dict[str, Any]) -> Path:
    """Store one scoring run's distribution (``frame``: churn_probability and model feature
    values per customer) and ``info`` (model version, PSI, ...) under ``scoring_history/``."""
    folder = Path(models_dir) / SCORING_DIR
    folder.mkdir(parents=True, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    target = folder / f"{stamp}.parquet"
    suffix = 1
    while target.exists():
        target = folder / f"{stamp}-{suffix}.parquet"
        suffix += 1
    tmp = folder / f".{target.name}.tmp"
    frame.to_parquet(tmp, index=False)
    _write_json_atomic(target.with_suffix(".json"), info)
    os.replace(tmp, target)
    return target


def scoring_snapshots(models_dir: Path) -> list[Path]:
    """Stored scoring runs (parquet paths), oldest first."""
    folder = Path(models_dir) / SCORING_DIR
    if not folder.is_dir():
        return []
    return sorted(p for p in folder.glob("*.parquet") if not p.name.startswith("."))


def read_snapshot_info(snapshot: Path) -> dict[str, Any]:
    info = Path(snapshot).with_suffix(".json")
    return json.loads(info.read_text(encoding="utf-8")) if info.is_file() else {}
