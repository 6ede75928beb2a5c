"""Versioned model folders (ml.registry)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

import pandas as pd

from ml.registry import (
    latest_model,
    load_model,
    read_gate,
    read_snapshot_info,
    record_gate,
    save_model,
    save_scoring_snapshot,
    scoring_snapshots,
)
from ml.score import score


def test_save_load_roundtrip_gives_identical_predictions(trained, observations, tmp_path):
    path = save_model(trained, tmp_path / "models", code_version="abc1234", extra_metadata={"label_lead_periods": 0})
    assert re.fullmatch(r"\d{8}T\d{6}Z-[0-9a-f]{8}", path.name)
    assert {p.name for p in path.iterdir()} == {"model.json", "metadata.json", "test_predictions.csv"}
    # No temp folders left behind.
    assert [p.name for p in (tmp_path / "models").iterdir()] == [path.name]

    loaded = load_model(path)
    frame = observations[observations["label"].isna()]
    a = score(trained, frame)
    b = score(loaded, frame)
    np.testing.assert_array_equal(a["churn_probability"].to_numpy(), b["churn_probability"].to_numpy())
    assert a["top_drivers"].tolist() == b["top_drivers"].tolist()

    assert loaded.feature_spec == trained.feature_spec
    assert loaded.features == trained.features
    assert loaded.best_iteration == trained.best_iteration
    assert loaded.code_version == "abc1234"
    assert loaded.metrics["roc_auc"] == pytest.approx(trained.metrics["roc_auc"])
    assert loaded.split == trained.split
    np.testing.assert_allclose(
        loaded.test_predictions["churn_probability"], trained.test_predictions["churn_probability"]
    )

    assert loaded.calibrator.to_dict() == trained.calibrator.to_dict()
    assert loaded.backtest["method"] == trained.backtest["method"]

    meta = json.loads((path / "metadata.json").read_text())
    assert meta["feature_spec"]["categorical"]["plan"] == ["basic", "enterprise", "pro"]
    assert meta["baselines"].keys() == trained.baselines.keys()
    assert meta["params"]["num_boost_round"] == trained.params["num_boost_round"]
    # what the registry promises to keep with every model
    assert meta["code_version"] == "abc1234" and meta["features"] == trained.features
    assert meta["metrics"]["roc_auc"] == pytest.approx(trained.metrics["roc_auc"])
    assert meta["training_window"]["observation_dates"] == [
        str(trained.split["fit_dates"][0]), str(trained.split["validation_dates"][-1])]
    assert meta["context"] == {"label_lead_periods": 0}
    assert meta["gate_thresholds"] == {"auc_tolerance": 0.005, "max_ece": 0.05}
    assert len(meta["backtest"]["splits"]) == 3


def test_latest_model_picks_newest_and_ignores_incomplete(trained, tmp_path):
    models = tmp_path / "models"
    assert latest_model(models) is None
    older = models / "20000101T000000Z-deadbeef"
    older.mkdir(parents=True)
    (older / "model.json").write_text("{}")
    (older / "metadata.json").write_text("{}")
    (models / "29990101T000000Z-00000000").mkdir()  # newer name but incomplete -> ignored
    (models / ".tmp-crashed").mkdir()
    assert latest_model(models) == older
    saved = save_model(trained, models, code_version="x")
    assert latest_model(models) == saved


def test_crash_during_save_leaves_no_model_folder(trained, tmp_path, monkeypatch):
    models = tmp_path / "models"

    def boom(*args, **kwargs):
        raise RuntimeError("disk full")

    monkeypatch.setattr("ml.registry.json.dumps", boom)
    with pytest.raises(RuntimeError):
        save_model(trained, models, code_version="x")
    assert list(models.iterdir()) == []
    assert latest_model(models) is None


def test_gate_sidecar_is_written_atomically_next_to_the_model(trained, tmp_path):
    path = save_model(trained, tmp_path / "models", code_version="x")
    assert read_gate(path) is None
    record_gate(path, {"passed": False, "reasons": ["ECE 0.09 exceeds 0.05"]})
    gate = read_gate(path)
    assert gate["passed"] is False and gate["reasons"] == ["ECE 0.09 exceeds 0.05"] and "decided_at" in gate
    assert sorted(p.name for p in path.iterdir()) == ["gate.json", "metadata.json", "model.json", "test_predictions.csv"]
    with pytest.raises(ValueError):
        record_gate(path, {"reasons": []})


def test_scoring_snapshots_are_kept_in_order(tmp_path):
    models = tmp_path / "models"
    assert scoring_snapshots(models) == []
    first = save_scoring_snapshot(models, pd.DataFrame({"churn_probability": [0.1, 0.2]}), {"psi": {}})
    second = save_scoring_snapshot(models, pd.DataFrame({"churn_probability": [0.3]}), {"psi": {"churn_probability": 0.4}})
    assert scoring_snapshots(models) == [first, second]
    assert pd.read_parquet(second)["churn_probability"].tolist() == [0.3]
    assert read_snapshot_info(second)["psi"] == {"churn_probability": 0.4}
    # the history folder is not a model
    assert latest_model(models) is None


def test_reusable_model_rules(trained, tmp_path):
    from datetime import datetime, timedelta, timezone

    from ml.registry import reusable_model

    models = tmp_path / "models"
    ctx = {"source": "cdnow", "churn_definition": "inactivity", "period_grain": "month", "label_lead_periods": 0}
    cols = list(trained.features) + ["label", "customer_id"]
    trained_at = datetime.fromisoformat(trained.trained_at.replace("Z", "+00:00"))
    if trained_at.tzinfo is None:
        trained_at = trained_at.replace(tzinfo=timezone.utc)
    day3 = trained_at + timedelta(days=3)

    def reuse(**kw):
        args = {"max_age_days": 7, "now": day3, "context": ctx, "code_version": "abc", "columns": cols, **kw}
        return reusable_model(models, **args)

    assert reuse() == (None, "no model has passed the quality gate yet")
    path = save_model(trained, models, code_version="abc", extra_metadata=ctx)
    assert reuse()[0] is None  # saved, but no gate result yet
    record_gate(path, {"passed": True})
    found, why = reuse()
    assert found == path and "is 3.0 days old (< CHURN_RETRAIN_DAYS=7)" in why
    # each rule on its own turns reuse off
    assert reuse(max_age_days=0) == (None, "retraining every run (CHURN_RETRAIN_DAYS=0)")
    assert reuse(now=trained_at + timedelta(days=7))[1] == f"{path.name} is 7.0 days old (CHURN_RETRAIN_DAYS=7)"
    assert reuse(code_version="def")[1] == f"{path.name} was trained by code abc, this is def"
    assert reuse(context={**ctx, "period_grain": "week", "source": "telco"})[1] == \
        f"{path.name} was trained with other period_grain, source"
    dropped = trained.features[0]
    assert reuse(columns=[c for c in cols if c != dropped])[1] == \
        f"{path.name} uses features no longer in the observation table: {dropped}"
    # a newer model that failed its gate is not served; the passing one still is
    failing = save_model(trained, models, code_version="abc", extra_metadata=ctx)
    record_gate(failing, {"passed": False})
    assert reuse()[0] == path
