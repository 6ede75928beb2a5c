"""Daily data-day partitions of the dbt assets, the schedule's partition, backfill ranges, the run queue."""

from __future__ import annotations

from datetime import date, datetime, timedelta, timezone

import dagster as dg
import pytest

from orchestration.partitions import (
    PartitionError,
    backfill_tags,
    data_day_partitions,
    latest_partition_key,
    previous_day_key,
    recompute_from,
)


def test_partitions_start_on_the_configured_day(monkeypatch):
    from orchestration.settings import get_settings

    p = data_day_partitions()
    assert p.get_first_partition_key() == "1997-01-01" and p.timezone == "UTC"
    monkeypatch.setenv("CHURN_PARTITION_START_DATE", "2020-02-29")
    get_settings.cache_clear()
    try:
        assert data_day_partitions().get_first_partition_key() == "2020-02-29"
    finally:
        get_settings.cache_clear()


def test_the_newest_partition_is_yesterday():
    yesterday = (datetime.now(timezone.utc).date() - timedelta(days=1)).isoformat()
    assert latest_partition_key(data_day_partitions()) == yesterday
    future = dg.DailyPartitionsDefinition(start_date=(date.today() + timedelta(days=5)).isoformat())
    with pytest.raises(PartitionError, match="CHURN_PARTITION_START_DATE=.* is not before today"):
        latest_partition_key(future)


def test_backfill_tags_name_one_single_run_range():
    p = data_day_partitions()
    assert backfill_tags("1998-01-01:1998-01-31", p) == {
        "dagster/asset_partition_range_start": "1998-01-01", "dagster/asset_partition_range_end": "1998-01-31"}
    assert backfill_tags("1998-03-05", p) == {
        "dagster/asset_partition_range_start": "1998-03-05", "dagster/asset_partition_range_end": "1998-03-05"}


@pytest.mark.parametrize("spec,message", [
    ("1998-13-01", "'1998-13-01' is not a day; use YYYY-MM-DD"),
    ("", "'' is not a day"),
    ("1996-12-31", "1996-12-31 is not a partition; days run from 1997-01-01 to "),
    ("2999-01-01", "2999-01-01 is not a partition"),
    ("1998-02-01:1998-01-01", "the range ends before it starts"),
])
def test_bad_backfill_ranges_are_one_line_errors(spec, message):
    with pytest.raises(PartitionError) as exc:
        backfill_tags(spec, data_day_partitions())
    assert message in str(exc.value) and "\n" not in str(exc.value) and str(exc.value).startswith(f"--backfill {spec}:")


def test_a_schedule_tick_runs_the_previous_day():
    from orchestration.definitions import defs

    assert previous_day_key(datetime(2024, 3, 1, 6, 0)) == "2024-02-29"
    sched = defs.resolve_schedule_def("churn_pipeline_daily")
    ctx = dg.build_schedule_context(scheduled_execution_time=datetime(2024, 6, 2, 6, 0, tzinfo=timezone.utc),
                                    repository_def=defs.get_repository_def())
    [req] = list(sched.evaluate_tick(ctx).run_requests)
    assert (req.partition_key, req.run_key) == ("2024-06-01", "2024-06-01")


def test_the_dbt_assets_are_partitioned_with_a_single_run_backfill_policy():
    from orchestration.assets.dbt import churn_dbt_models
    from orchestration.definitions import defs

    assert isinstance(churn_dbt_models.partitions_def, dg.DailyPartitionsDefinition)
    assert churn_dbt_models.backfill_policy == dg.BackfillPolicy.single_run()
    job = defs.resolve_job_def("churn_pipeline")
    assert job.tags["churn/warehouse"] == "private"
    # ingest and the model stay unpartitioned (landing files are the unit of delivery)
    g = defs.resolve_asset_graph()
    assert g.get(dg.AssetKey(["raw", "orders"])).partitions_def is None
    assert g.get(dg.AssetKey(["churn_model"])).partitions_def is None


def test_recompute_from_is_the_first_day_of_the_runs_partitions():
    p = data_day_partitions()

    @dg.asset(partitions_def=p)
    def probe(context):  # (no annotation: this module has postponed annotations)
        return dg.MaterializeResult(metadata={"from": str(recompute_from(context))})

    def run(**kw) -> str:
        r = dg.materialize([probe], instance=dg.DagsterInstance.ephemeral(), **kw)
        [m] = {e.materialization.metadata["from"].value for e in r.all_events if e.event_type_value == "ASSET_MATERIALIZATION"}
        return m

    assert run(partition_key="1998-03-05") == "1998-03-05"
    assert run(tags=backfill_tags("1998-01-10:1998-02-20", p)) == "1998-01-10"


def test_instance_yaml_queues_pipeline_runs_one_at_a_time(tmp_path, capsys):
    from orchestration.instance import INSTANCE_YAML, ensure_instance_yaml

    home = tmp_path / "home"
    path = ensure_instance_yaml(home)
    assert path.read_text() == INSTANCE_YAML
    inst = dg.DagsterInstance.from_config(str(home))
    limits = inst.get_concurrency_config().run_queue_config.tag_concurrency_limits
    assert limits == [{"key": "churn/warehouse", "limit": 1}]
    # an older file of this project (telemetry only) is replaced; a file the user wrote is kept
    old = tmp_path / "old"
    old.mkdir()
    (old / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    assert ensure_instance_yaml(old).read_text() == INSTANCE_YAML
    mine = tmp_path / "mine"
    mine.mkdir()
    (mine / "dagster.yaml").write_text("storage:\n  sqlite:\n    base_dir: /x\n")
    ensure_instance_yaml(mine)
    assert (mine / "dagster.yaml").read_text() == "storage:\n  sqlite:\n    base_dir: /x\n"
    assert "add a churn/warehouse run tag limit" in capsys.readouterr().err
