"""Versioned model folders (ml.registry)."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from ml.registry import latest_model, load_model, save_model
from ml.score import score


def test_save_load_roundtrip_gives_identical_predictions(trained, observations, tmp_path):
    path = save_model(trained, tmp_path / "models", code_version="abc1234")
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

    meta = json.loads((path / "metadata.json").read_text())
    assert meta["feature_spec"]["categorical"]["plan"] == ["basic", "enterprise", "pro"]
    assert meta["baselines"].keys() == trained.baselines.keys()
    assert meta["params"]["num_boost_round"] == trained.params["num_boost_round"]


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
