"""`python -m orchestration.run`: run the whole DAG once and print where the results are.

Used by `make run`. The run is recorded in the project-local DAGSTER_HOME, so `make ui`
shows it afterwards.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
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


def failure_lines(result) -> list[str]:
    """One line per failed step or failed blocking check, with the error's first line."""
    lines = []
    for ev in result.all_events:
        if ev.event_type_value == "STEP_FAILURE":
            err = ev.event_specific_data.error
            msg = (err.message if err else "failed").strip().splitlines()
            cause = err.cause if err else None
            while cause is not None and cause.cause is not None:
                cause = cause.cause
            text = (cause.message.strip().splitlines()[0] if cause else (msg[-1] if msg else ""))
            lines.append(f"step {ev.step_key} failed: {text}")
        elif ev.event_type_value == "ASSET_CHECK_EVALUATION":
            data = ev.event_specific_data
            if not data.passed:
                lines.append(f"check {data.check_name} on {data.asset_key.to_user_string()} failed: {data.description}")
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
        f"model: test ROC AUC {m.get('roc_auc', float('nan')):.3f}, top-decile lift {m.get('top_decile_lift', float('nan')):.2f}"
        f" ({meta.get('split', {}).get('split_method', '?')} split)",
        f"published: {pub}",
    ]
    for t in manifest["tables"]:
        lines.append(f"  {t['parquet']:<32} {t['rows']:>8} rows")
    lines.append(f"  {manifest['duckdb_file']:<32} (DuckDB, storage {manifest['storage_version']})")
    lines.append(f"report: {pub / 'report' / 'index.html'}")
    lines.append(f"data docs: {settings.gx_docs_dir / 'index.html'}")
    return "\n".join(lines)


def main() -> int:
    os.environ.setdefault("DAGSTER_HOME", str(REPO_ROOT / ".dagster_home"))
    home = Path(os.environ["DAGSTER_HOME"])
    home.mkdir(parents=True, exist_ok=True)
    if not (home / "dagster.yaml").exists():
        # SQLite storage under DAGSTER_HOME is the default; the file just makes that explicit
        (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    try:
        settings = get_settings()
        settings.resolved_landing_dir  # noqa: B018  (raises a clear error for source=folder without a folder)
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    ensure_manifest()

    import dagster as dg

    from orchestration.definitions import defs

    started = time.time()
    with dg.DagsterInstance.get() as instance:
        # the full event log lives in DAGSTER_HOME (see `make ui`); the console gets warnings only
        log_level = os.environ.get("CHURN_LOG_LEVEL", "WARNING").upper()
        result = defs.resolve_job_def("churn_pipeline").execute_in_process(
            instance=instance,
            raise_on_error=False,
            run_config={"loggers": {"console": {"config": {"log_level": log_level}}}},
        )
    elapsed = time.time() - started
    problems = failure_lines(result)
    if not result.success or problems:
        print(f"churn pipeline FAILED after {elapsed:.0f}s (run {result.run_id}); published files were left as they were:",
              file=sys.stderr)
        for line in problems or ["see `make ui` for the run's logs"]:
            print(f"  - {line}", file=sys.stderr)
        return 1
    print(f"churn pipeline succeeded in {elapsed:.0f}s (run {result.run_id})")
    print(summary(settings))
    return 0


if __name__ == "__main__":
    sys.exit(main())
