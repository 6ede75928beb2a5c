"""The Dagster definitions load, with the lineage, groups, kinds and blocking checks the UI shows."""

from __future__ import annotations

import dagster as dg

from orchestration.assets.publish import PUBLISHED_TABLES


def _graph():
    from orchestration.definitions import defs

    return defs, defs.resolve_asset_graph()


def test_definitions_load_with_job_and_schedule():
    defs, _ = _graph()
    assert defs.resolve_job_def("churn_pipeline") is not None
    sched = defs.resolve_schedule_def("churn_pipeline_daily")
    assert sched.cron_schedule == "0 6 * * *" and sched.execution_timezone == "UTC"


def test_lineage_runs_raw_to_published():
    _, g = _graph()
    key = dg.AssetKey
    up = lambda k: {p.to_user_string() for p in g.get(key(k)).parent_keys}  # noqa: E731
    assert up(["raw", "customers"]) == {"landing"}
    assert up(["staging", "stg_crm__customers"]) == {"raw/customers"}
    assert up(["snapshots", "customers_snapshot"]) == {"staging/stg_crm__customers"}
    assert "marts/fct_customer_period" in up(["marts", "fct_churn_period"])
    assert up(["churn_model"]) == {"ml/ml_observations"}
    assert up(["customer_churn_scores"]) == {"churn_model", "ml/ml_scoring_set"}
    assert up(["published", "fct_churn_period"]) == {"marts/fct_churn_period"}
    assert up(["published", "fct_churn_segment_period"]) == {"marts/fct_churn_segment_period"}
    assert up(["published", "fct_cohort_retention"]) == {"marts/fct_cohort_retention"}
    assert up(["published", "customer_churn_scores"]) == {"customer_churn_scores"}
    assert up(["published", "churn_risk_by_segment"]) == {"churn_risk_by_segment"}
    assert up(["churn_report"]) == {f"published/{t}" for t in PUBLISHED_TABLES}


def test_every_asset_has_a_group_kind_and_description():
    _, g = _graph()
    groups = {}
    for k in g.get_all_asset_keys():
        node = g.get(k)
        groups.setdefault(node.group_name, set()).add(k.to_user_string())
        assert node.kinds, k
        assert node.owners, k
        assert (node.description or "").strip(), k
    assert set(groups) == {"ingest", "staging", "marts", "ml", "publish"}
    kinds = {kind for k in g.get_all_asset_keys() for kind in g.get(k).kinds}
    assert {"duckdb", "dbt", "xgboost", "great_expectations", "parquet"} <= kinds
    assert g.get(dg.AssetKey(["raw", "orders"])).kinds == {"duckdb", "great_expectations"}
    assert "published/fct_churn_period" in groups["publish"] and "raw/orders" in groups["ingest"]


def test_gx_checks_are_blocking():
    defs, g = _graph()
    names = {k.name: k for k in g.asset_check_keys}
    for table in ("customers", "subscriptions", "orders", "interactions", "support_tickets", "loyalty_events"):
        assert f"gx_raw_{table}" in names
    assert "gx_fct_churn_period" in names
    # dbt tests are asset checks too
    assert any(n.startswith("unique_fct_churn_period") for n in names)
    specs = {s.key.name: s for a in defs.assets if isinstance(a, dg.AssetsDefinition) for s in a.check_specs}
    specs.update({s.key.name: s for c in defs.asset_checks for s in c.check_specs})
    assert specs["gx_raw_customers"].blocking and specs["gx_fct_churn_period"].blocking
