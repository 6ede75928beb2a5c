"""`python -m orchestration.run`: run the whole DAG once and print where the results are.

Used by `make run`. The run is recorded in the project-local DAGSTER_HOME, so `make ui`
shows it afterwards.
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
import time
import uuid
from pathlib import Path

from orchestration.settings import REPO_ROOT, SettingsError, get_settings


def ensure_manifest() -> None:
    """dbt's manifest must exist before the Dagster code is imported (no parsing at import)."""
    from orchestration.project import DBT_PROJECT_DIR

    manifest = DBT_PROJECT_DIR / "target" / "manifest.json"
    newest_source = max(p.stat().st_mtime for p in DBT_PROJECT_DIR.rglob("*") if p.suffix in {".sql", ".yml"}
                        and "target" not in p.parts)
    if manifest.exists() and manifest.stat().st_mtime >= newest_source:
        return
    dbt = Path(sys.executable).with_name("dbt")
    subprocess.run([str(dbt), "parse", "--quiet", "--project-dir", str(DBT_PROJECT_DIR), "--profiles-dir",
                    str(DBT_PROJECT_DIR)], check=True)


def _innermost(err):
    while err is not None and err.cause is not None:
        err = err.cause
    return err


_ANSI = re.compile(r"\x1b\[[0-9;]*m")


def _error_text(message: str) -> str:
    """The informative part of an error message, as one line (dbt: the errors it parsed from its log)."""
    text = _ANSI.sub("", message or "").strip()
    marker = "Errors parsed from dbt logs:"
    if marker in text:
        parts = [line.strip() for line in text.split(marker, 1)[1].splitlines() if line.strip()]
        parts = [p for p in parts if not p.startswith(("Stack Trace", "File "))][:3]
        return "dbt: " + "; ".join(parts)[:400]
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    return lines[0][:400] if lines else "failed"


def failure_lines(result) -> list[str]:
    """One line per failed step or failed check: the cause, never a traceback.

    A step stopped with ``dg.Failure`` (bad input, a failed check) reports its description as is;
    any other exception reports the step and the first line of the innermost error. A blocking
    check's own step failure repeats the check's line, so it is left out.
    """
    lines: list[str] = []
    for ev in result.all_events:
        if ev.event_type_value == "STEP_FAILURE":
            data = ev.event_specific_data
            err = data.error
            if err is not None and "DagsterAssetCheckFailedError" in (err.cls_name or ""):
                continue
            user = getattr(data, "user_failure_data", None)
            if user is not None and user.description:
                text = user.description.strip().splitlines()[0]
            else:
                inner = _innermost(err)
                text = f"step {ev.step_key} failed: {_error_text(inner.message if inner else 'failed')}"
        elif ev.event_type_value == "ASSET_CHECK_EVALUATION":
            data = ev.event_specific_data
            if data.passed or _is_warning(data):
                continue
            description = (data.description or "failed").strip().splitlines()[0]
            text = f"check {data.check_name} on {data.asset_key.to_user_string()} failed: {description}"
        else:
            continue
        if text not in lines:
            lines.append(text)
    return lines


def _is_warning(check_data) -> bool:
    """A failed check of WARN severity (e.g. score drift) is a warning: it blocks nothing, the run
    publishes, so it must not be reported as a failure or turn the exit status non-zero."""
    return getattr(getattr(check_data, "severity", None), "value", None) == "WARN"


def warning_lines(result) -> list[str]:
    """One line per failed WARN-severity check (shown after a successful run)."""
    lines: list[str] = []
    for ev in result.all_events:
        if ev.event_type_value != "ASSET_CHECK_EVALUATION":
            continue
        data = ev.event_specific_data
        if data.passed or not _is_warning(data):
            continue
        description = (data.description or "failed").strip().splitlines()[0]
        text = f"check {data.check_name} on {data.asset_key.to_user_string()} warns: {description}"
        if text not in lines:
            lines.append(text)
    return lines


def quarantine_lines(result) -> list[str]:
    """Rows set aside during ingest (shown after a successful run; details in raw.quarantine)."""
    lines = []
    for ev in result.all_events:
        if ev.event_type_value != "ASSET_MATERIALIZATION":
            continue
        mat = ev.event_specific_data.materialization
        key = mat.asset_key.path
        if len(key) != 2 or key[0] != "raw":
            continue
        meta = {k: getattr(v, "value", v) for k, v in mat.metadata.items()}
        bad, dup = int(meta.get("rows_quarantined") or 0), int(meta.get("rows_duplicate") or 0)
        if bad or dup:
            lines.append(f"  {key[1]}: {bad} of {meta.get('rows_read')} rows quarantined (raw.quarantine), "
                         f"{dup} duplicate rows dropped (raw.duplicates)")
    return lines


def summary(settings) -> str:
    import duckdb

    pub = settings.published_dir
    manifest = json.loads((pub / "manifest.json").read_text())
    con = duckdb.connect()
    periods = con.execute(
        f"select min(period_start), max(period_start), count(*) from read_parquet('{pub / 'fct_churn_period.parquet'}')"
    ).fetchone()
    last = con.execute(
        f"select period_start, customers_start, customers_churned, churn_rate from read_parquet('{pub / 'fct_churn_period.parquet'}') "
        "order by period_start desc limit 1"
    ).fetchone()
    from ml import registry

    model_dir = registry.latest_model(settings.models_dir)
    meta = json.loads((model_dir / "metadata.json").read_text()) if model_dir else {}
    m = meta.get("metrics", {})
    lines = [
        f"source: {settings.source}   as-of date: {manifest.get('as_of_date')}   churn definition: {manifest.get('churn_definition')}",
        f"periods covered: {periods[0]} .. {periods[1]} ({periods[2]} {settings.period_grain}s)",
        f"last period {last[0]}: churn rate {last[3]:.2%} ({last[2]} of {last[1]} customers)" if last and last[3] is not None
        else "last period: no customers at its start",
        f"model: backtest ROC AUC {m.get('roc_auc', float('nan')):.3f}, top-decile lift {m.get('top_decile_lift', float('nan')):.2f}"
        f" ({meta.get('split', {}).get('split_method', '?')} split)",
        f"published: {pub}",
    ]
    for t in manifest["tables"]:
        lines.append(f"  {t['parquet']:<32} {t['rows']:>8} rows")
    lines.append(f"  {manifest['duckdb_file']:<32} (DuckDB, storage {manifest['storage_version']})")
    lines.append(f"report: {pub / 'report' / 'index.html'}")
    lines.append(f"data docs: {settings.gx_docs_dir / 'index.html'}")
    lines.append("lineage, checks and run history: make ui  (then open http://127.0.0.1:3000)")
    return "\n".join(lines)


def main() -> int:
    if "--full-refresh" in sys.argv[1:]:  # rebuild the incremental dbt models in full (same as CHURN_FULL_REFRESH=1)
        os.environ["CHURN_FULL_REFRESH"] = "1"
        get_settings.cache_clear()
    os.environ.setdefault("DAGSTER_HOME", str(REPO_ROOT / ".dagster_home"))
    from orchestration.instance import ensure_instance_yaml

    ensure_instance_yaml(Path(os.environ["DAGSTER_HOME"]))
    try:
        settings = get_settings()
        settings.resolved_landing_dir  # noqa: B018  (raises a clear error for source=folder without a folder)
        settings.check_paths()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ensure_manifest()

    import dagster as dg

    from orchestration.definitions import defs
    from orchestration.partitions import PartitionError, backfill_tags, data_day_partitions, latest_partition_key

    # the dbt assets are partitioned by data day: a run names the newest day, or with
    # --backfill START[:END] the days of one run, as a single-run backfill launched in the UI would
    tags: dict[str, str] = {}
    partition_key: str | None = None
    try:
        if "--backfill" in sys.argv[1:]:
            i = sys.argv.index("--backfill")
            tags = backfill_tags(sys.argv[i + 1] if i + 1 < len(sys.argv) else "", data_day_partitions())
        else:
            partition_key = latest_partition_key(data_day_partitions())
    except PartitionError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    from orchestration.progress import run_with_progress, stage_totals

    started = time.time()
    # the full event log lives in DAGSTER_HOME (see `make ui`); by default the console stays quiet and
    # a failure is reported below as one line per problem (set CHURN_LOG_LEVEL to see the log). dbt's
    # own output, which dagster-dbt echoes to stdout, goes to data/logs/last_run.log meanwhile.
    quiet = not os.environ.get("CHURN_LOG_LEVEL")
    log_level = (os.environ.get("CHURN_LOG_LEVEL") or "CRITICAL").upper()
    log_path = settings.data_dir / "logs" / "last_run.log"
    log_path.parent.mkdir(parents=True, exist_ok=True)
    job = defs.resolve_job_def("churn_pipeline")
    with dg.DagsterInstance.get() as instance, log_path.open("w") as log, \
            contextlib.redirect_stdout(log if quiet else sys.stdout):
        def run(run_id: str):
            return job.execute_in_process(
                instance=instance,
                run_id=run_id,
                raise_on_error=False,
                partition_key=partition_key,
                tags=tags,
                run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
            )

        if quiet and os.environ.get("CHURN_PROGRESS", "1") != "0":
            # progress lines go to stderr (stdout is the log file meanwhile)
            result = run_with_progress(run, instance, str(uuid.uuid4()), stage_totals(job), sys.stderr)
        else:
            result = run(str(uuid.uuid4()))
    elapsed = time.time() - started
    problems = failure_lines(result)
    if not result.success or problems:
        # one line per problem and nothing else; the published files were left as they were
        for line in problems or [f"churn pipeline run {result.run_id} failed; see `make ui` for its logs"]:
            print(f"error: {line}", file=sys.stderr)
        return 1
    print(f"churn pipeline succeeded in {elapsed:.0f}s (run {result.run_id})")
    print(summary(settings))
    quarantined = quarantine_lines(result)
    if quarantined:
        print("data set aside during ingest:")
        print("\n".join(quarantined))
    for line in warning_lines(result):  # published all the same; see `make ui` for the check's metadata
        print(f"warning: {line}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    sys.exit(main())
