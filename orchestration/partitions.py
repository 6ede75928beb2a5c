"""Daily partitions of the dbt assets: a partition is a data day.

Materializing day D (re)computes every customer period that data dated D or later can change:
dbt's incremental boundary becomes at most D - inactivity_days - grace_days - 1, the same margin
the pipeline applies to newly loaded rows (see int_incremental_boundary). A range D1..Dn is one
run (``BackfillPolicy.single_run()``) and one ``dbt build``, from D1. The facts always describe
all loaded data as of the as-of date; a partition only widens what is recomputed, so the result
equals a full rebuild whatever days are chosen.

Ingest and the model assets are not partitioned: landing files are the unit of delivery (the
loader appends only new files), and the model and scores describe the latest as-of date.
"""

from __future__ import annotations

from datetime import date, datetime, timedelta

import dagster as dg

from orchestration.settings import get_settings


def data_day_partitions() -> dg.DailyPartitionsDefinition:
    settings = get_settings()
    return dg.DailyPartitionsDefinition(
        start_date=settings.partition_start_date.isoformat(), timezone=settings.schedule_timezone)


def recompute_from(context: dg.AssetExecutionContext) -> date | None:
    """The first data day of the run's partition (range), or None for an unpartitioned run."""
    if not (context.has_partition_key or context.has_partition_key_range):
        return None
    return context.partition_time_window.start.date()


def previous_day_key(scheduled: datetime) -> str:
    """The partition a daily tick runs: the day before it (the last complete day of data)."""
    return (scheduled.date() - timedelta(days=1)).isoformat()


class PartitionError(ValueError):
    pass


def backfill_tags(spec: str, partitions: dg.DailyPartitionsDefinition) -> dict[str, str]:
    """Run tags of a single-run backfill of days ``START[:END]`` (END defaults to START): the tags a
    `BackfillPolicy.single_run()` backfill gives its one run. Raises PartitionError (one line)."""
    start, _, end = spec.partition(":")
    end = end or start
    for day in (start, end):
        try:
            date.fromisoformat(day)
        except ValueError:
            raise PartitionError(f"--backfill {spec}: {day!r} is not a day; use YYYY-MM-DD or YYYY-MM-DD:YYYY-MM-DD") from None
        if not partitions.has_partition_key(day):
            keys = partitions.get_partition_keys()
            raise PartitionError(f"--backfill {spec}: {day} is not a partition; days run from {keys[0]} to {keys[-1]} "
                                 "(CHURN_PARTITION_START_DATE sets the first)")
    if end < start:
        raise PartitionError(f"--backfill {spec}: the range ends before it starts; use START:END with START <= END")
    return {"dagster/asset_partition_range_start": start, "dagster/asset_partition_range_end": end}


def latest_partition_key(partitions: dg.DailyPartitionsDefinition) -> str:
    """The partition a run without a named day materializes: the newest (yesterday). It recomputes
    no more than the newly loaded rows need unless the data reach yesterday, where it is the same."""
    key = partitions.get_last_partition_key()
    if key is None:
        raise PartitionError(f"CHURN_PARTITION_START_DATE={partitions.start:%Y-%m-%d} is not before today; "
                             "set it to a past day (the first day a backfill may name)")
    return key
