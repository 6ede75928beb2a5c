"""Progress lines for the terminal during `make run`, read from the run's own event log.

The job runs in a worker thread; the main thread tails the run's events in DAGSTER_HOME and
prints one line per thing a person waiting wants to see: each landing file ingested, each dbt
model built, each training cutoff, each failed check. Assets report progress the normal way
(materializations, and ``context.log.info`` messages starting with :data:`PREFIX`), so the
same lines are in the Dagster UI's run log and nothing here reaches into the assets.
"""

import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

import dagster as dg

PREFIX = "progress: "
# the stage an asset belongs to, by the first part of its key
_STAGES = {"landing": "ingest", "raw": "ingest", "staging": "dbt", "snapshots": "dbt", "intermediate": "dbt",
           "marts": "dbt", "ml": "dbt", "published": "publish", "churn_report": "report"}


def stage_of(key: dg.AssetKey) -> str:
    return _STAGES.get(key.path[0], "model")


def _meta(entry: Any) -> dict:
    return {k: getattr(v, "value", v) for k, v in entry.materialization.metadata.items()}


def line_for(entry: dg.EventLogEntry, counts: dict[str, int], totals: dict[str, int]) -> str | None:
    """The progress line for one event-log entry, or None when it is not worth a line.

    ``counts`` is updated (assets done per stage); ``totals`` says how many each stage has.
    """
    if entry.dagster_event is None:
        text = entry.user_message or ""
        return text[len(PREFIX):] if text.startswith(PREFIX) else None
    ev = entry.dagster_event
    if ev.event_type == dg.DagsterEventType.ASSET_MATERIALIZATION:
        key = ev.event_specific_data.materialization.asset_key  # type: ignore[union-attr]
        stage = stage_of(key)
        counts[stage] = counts.get(stage, 0) + 1
        meta = _meta(ev.event_specific_data)
        rows = meta.get("dagster/row_count")
        of = f"{counts[stage]}/{totals[stage]}" if totals.get(stage) else f"{counts[stage]}"
        detail = f", {int(rows):,} rows" if isinstance(rows, (int, float)) else ""
        return f"{stage:<7} {of:>6}  {key.to_user_string()}{detail}"
    if ev.event_type == dg.DagsterEventType.ASSET_CHECK_EVALUATION:
        data = ev.event_specific_data
        if data.passed:  # type: ignore[union-attr]
            return None
        text = (data.description or "failed").strip().splitlines()[0]  # type: ignore[union-attr]
        return f"check   FAILED  {data.check_name} on {data.asset_key.to_user_string()}: {text}"  # type: ignore[union-attr]
    if ev.event_type == dg.DagsterEventType.STEP_FAILURE:
        return f"step    FAILED  {ev.step_key}"
    return None


def stage_totals(job: dg.JobDefinition) -> dict[str, int]:
    totals: dict[str, int] = {}
    for key in job.asset_layer.executable_asset_keys:
        totals[stage_of(key)] = totals.get(stage_of(key), 0) + 1
    return totals


def run_with_progress(run: Callable[[str], Any], instance: dg.DagsterInstance, run_id: str, totals: dict[str, int],
                      out: TextIO, poll: float = 0.5) -> Any:
    """Call ``run(run_id)`` in a thread and print progress lines to ``out`` until it returns."""
    box: dict[str, Any] = {}

    def target() -> None:
        try:
            box["result"] = run(run_id)
        except BaseException as exc:  # noqa: BLE001  (re-raised in the caller's thread)
            box["error"] = exc

    worker = threading.Thread(target=target, name="churn-run", daemon=True)
    started = time.monotonic()
    worker.start()
    cursor: str | None = None
    counts: dict[str, int] = {}
    while True:
        alive = worker.is_alive()
        try:
            conn = instance.get_records_for_run(run_id, cursor=cursor)
        except Exception:  # noqa: BLE001  (the run may not be stored yet)
            conn = None
        if conn is not None:
            cursor = conn.cursor
            for record in conn.records:
                text = line_for(record.event_log_entry, counts, totals)
                if text:
                    out.write(f"[{time.monotonic() - started:5.0f}s] {text}\n")
                    out.flush()
        if not alive:
            break
        worker.join(poll)
    if "error" in box:
        raise box["error"]
    return box["result"]
