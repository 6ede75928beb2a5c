"""A file-system model registry: one immutable, versioned folder per trained model.

Layout::

    models_dir/
      20250131T120000Z-1a2b3c4d/
        model.json            # booster.save_model (XGBoost JSON, exact round trip)
        metadata.json         # metrics, baselines, feature spec + levels, split, params, ...
        test_predictions.csv  # test-split predictions, for charts (optional)

The folder is written under a dot-prefixed temp name inside ``models_dir`` (same
filesystem) and then renamed with ``os.replace``, which is atomic: a crash leaves at
worst an ignored ``.tmp-*`` folder, never a half-written model that
``latest_model`` could pick up.
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

from ml.features import DATE_COLUMN, FeatureSpec
from ml.train import TrainResult

MODEL_FILE = "model.json"
METADATA_FILE = "metadata.json"
PREDICTIONS_FILE = "test_predictions.csv"
FORMAT_VERSION = 1


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


def save_model(result: TrainResult, models_dir: Path, *, code_version: str) -> Path:
    """Write ``result`` to a new ``models_dir/<UTC timestamp>-<short hash>/`` folder.

    The short hash is the first 8 hex digits of the SHA-256 of ``model.json``, so the
    name identifies the exact trees.  Returns the final folder path.
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
            "xgboost_version": xgb.__version__,
            "model_sha256": digest,
            "best_iteration": result.best_iteration,
            "features": list(result.features),
            "feature_spec": result.feature_spec.to_dict(),
            "metrics": result.metrics,
            "baselines": result.baselines,
            "split": result.split,
            "params": result.params,
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
    booster.set_param({"nthread": 2})
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
    )


def latest_model(models_dir: Path) -> Path | None:
    """Newest complete model folder (by the UTC timestamp in its name), or None.

    Temp folders (dot-prefixed) and folders missing either file are ignored.
    """
    models_dir = Path(models_dir)
    if not models_dir.is_dir():
        return None
    candidates = [
        p
        for p in models_dir.iterdir()
        if p.is_dir()
        and not p.name.startswith(".")
        and (p / MODEL_FILE).is_file()
        and (p / METADATA_FILE).is_file()
    ]
    if not candidates:
        return None
    # Names start with a fixed-width UTC timestamp, so lexical order is time order
    # (the "-N" collision suffix sorts after the unsuffixed name of the same second).
    return max(candidates, key=lambda p: p.name)
