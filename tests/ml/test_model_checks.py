"""The Dagster side of the gate and the drift check: a failing gate stops scoring, scoring uses
the newest model that passed, and a shifted scoring population trips the WARN-severity PSI check.

Runs the real assets and checks on a tiny warehouse (the synthetic observation tables written
to DuckDB), with the test-sized search (ml_synthetic.FAST) to stay quick.
"""

from __future__ import annotations

import dagster as dg
import duckdb
import numpy as np
import pytest

from ml import registry
from ml.train import fit_model
from ml.train import train_model as real_train_model
from ml_synthetic import FAST, make_observations


def _write_warehouse(path, obs):
    path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(path))
    try:
        con.execute("create schema ml; create schema intermediate")
        con.register("obs", obs.drop(columns=["all_null"]))
        con.execute("create table ml.ml_observations as select * from obs where label is not null")
        con.execute("create table ml.ml_scoring_set as select * from obs where label is null")
        con.execute("create table intermediate.int_run_parameters as select 'inactivity' as churn_definition")
    finally:
        con.close()


def _shuffled_fit(train, **kw):
    bad = train.copy()
    bad["label"] = np.random.default_rng(5).permutation(bad["label"].to_numpy())
    return fit_model(bad, **kw)


def _checks(result) -> dict:
    return {e.asset_check_evaluation_data.check_name: e.asset_check_evaluation_data
            for e in result.all_events if e.event_type_value == "ASSET_CHECK_EVALUATION"}


def _materialized(result) -> set[str]:
    return {e.asset_key.to_user_string() for e in result.all_events if e.event_type_value == "ASSET_MATERIALIZATION"}


def test_gate_blocks_a_bad_model_and_drift_warns(pipeline_env, monkeypatch):
    from orchestration.assets import ml as ml_assets
    from orchestration.checks.model_checks import model_quality_gate, score_drift_psi
    from orchestration.resources import WarehouseResource

    settings = pipeline_env(CHURN_SOURCE="synthetic")
    obs = make_observations(600, 5, seed=11, u_shaped=True)
    _write_warehouse(settings.warehouse_path, obs)
    fit = {"fn": fit_model}
    monkeypatch.setattr(ml_assets.train, "train_model",
                        lambda o, **kw: real_train_model(o, **{**kw, **FAST, "fit_fn": fit["fn"]}))
    instance = dg.DagsterInstance.ephemeral()
    everything = [ml_assets.churn_model, ml_assets.customer_churn_scores, model_quality_gate, score_drift_psi]
    resources = {"warehouse": WarehouseResource()}

    # run 1: a good model passes the gate and scores; no previous scoring run to compare with
    r1 = dg.materialize(everything, instance=instance, resources=resources, raise_on_error=False)
    assert r1.success
    checks = _checks(r1)
    assert checks["model_quality_gate"].passed and checks["score_drift_psi"].passed
    good = registry.latest_model(settings.models_dir)
    assert registry.read_gate(good)["passed"] is True

    def served() -> set[str]:
        con = duckdb.connect(str(settings.warehouse_path), read_only=True)
        try:
            return {r[0] for r in con.execute("select distinct model_version from ml.customer_churn_scores").fetchall()}
        finally:
            con.close()

    assert served() == {good.name}

    # run 1b: the next run (CHURN_RETRAIN_DAYS=7 by default) serves that model again, untrained
    calls = []
    fit["fn"] = lambda *a, **kw: calls.append(1) or fit_model(*a, **kw)
    r1b = dg.materialize(everything, instance=instance, resources=resources, raise_on_error=False)
    assert r1b.success and calls == []
    meta = instance.get_latest_materialization_event(dg.AssetKey(["churn_model"])).asset_materialization.metadata
    assert meta["trained_this_run"].value is False and meta["model_version"].value == good.name
    assert "passed the gate and is 0.0 days old" in meta["model_reuse"].value
    assert _checks(r1b)["model_quality_gate"].passed and registry.list_models(settings.models_dir) == [good]

    # run 2: training every run (CHURN_RETRAIN_DAYS=0), a model trained on shuffled labels fails the
    # blocking gate; scoring does not run
    pipeline_env(CHURN_SOURCE="synthetic", CHURN_RETRAIN_DAYS="0")
    fit["fn"] = _shuffled_fit
    r2 = dg.materialize(everything, instance=instance, resources=resources, raise_on_error=False)
    checks = _checks(r2)
    assert not checks["model_quality_gate"].passed
    assert checks["model_quality_gate"].severity == dg.AssetCheckSeverity.ERROR
    assert "does not beat" in checks["model_quality_gate"].description
    assert "churn_model" in _materialized(r2) and "customer_churn_scores" not in _materialized(r2)
    bad = registry.latest_model(settings.models_dir)
    assert bad != good and registry.read_gate(bad)["passed"] is False
    assert registry.latest_passing_model(settings.models_dir) == good
    assert served() == {good.name}

    # run 3: scoring alone, on a shifted population: uses the newest passing model (not the
    # newer failing one), the run succeeds, the PSI check fails with WARN severity
    con = duckdb.connect(str(settings.warehouse_path))
    con.execute("update ml.ml_scoring_set set login_gap_days = login_gap_days * 4 + 20")
    con.close()
    r3 = dg.materialize(everything, instance=instance, resources=resources, raise_on_error=False,
                        selection=[ml_assets.customer_churn_scores, score_drift_psi])
    assert r3.success
    drift = _checks(r3)["score_drift_psi"]
    assert not drift.passed and drift.severity == dg.AssetCheckSeverity.WARN
    assert "login_gap_days" in drift.description
    assert served() == {good.name}
    info = registry.read_snapshot_info(registry.scoring_snapshots(settings.models_dir)[-1])
    assert info["model_version"] == good.name and info["psi"]["login_gap_days"] > 0.25
    assert drift.metadata["psi_max"].value == pytest.approx(max(info["psi"].values()))


def test_definitions_carry_the_gate_as_blocking_and_drift_as_non_blocking():
    from orchestration.definitions import defs

    specs = {s.key.name: s for c in defs.asset_checks for s in c.check_specs}
    assert specs["model_quality_gate"].blocking and specs["model_quality_gate"].asset_key == dg.AssetKey(["churn_model"])
    assert not specs["score_drift_psi"].blocking
    assert specs["score_drift_psi"].asset_key == dg.AssetKey(["customer_churn_scores"])
