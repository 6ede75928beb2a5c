"""Test helpers: load a landing folder and run dbt against a temporary warehouse."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import date
from pathlib import Path

import duckdb

from orchestration.dbt_args import dbt_build_args, dbt_env
from orchestration.ingest.contract import TABLES
from orchestration.ingest.loader import load_table
from orchestration.settings import REPO_ROOT, Settings

DATA = Path(__file__).resolve().parent / "data"


def load_landing(settings: Settings, landing: Path) -> None:
    settings.warehouse_path.parent.mkdir(parents=True, exist_ok=True)
    con = duckdb.connect(str(settings.warehouse_path))
    try:
        for t in TABLES:
            load_table(con, landing, t)
    finally:
        con.close()


def dbt_build(settings: Settings, select: tuple[str, ...] = ("+fct_churn_segment_period", "+fct_churn_period", "+fct_cohort_retention"),
              project_dir: Path | None = None, recompute_from: date | None = None) -> subprocess.CompletedProcess:
    dbt = Path(sys.executable).with_name("dbt")
    env = {**os.environ, **dbt_env(settings, recompute_from=recompute_from)}
    project = project_dir or REPO_ROOT / "dbt_project"
    proc = subprocess.run(
        [str(dbt), *dbt_build_args(settings, ["--select", *select]), "--project-dir", str(project),
         "--profiles-dir", str(project), "--target-path", str(settings.data_dir / "dbt_target")],
        env=env, capture_output=True, text=True,
    )
    assert proc.returncode == 0, proc.stdout[-4000:]
    return proc


def query(settings: Settings, sql: str) -> list[tuple]:
    con = duckdb.connect(str(settings.warehouse_path), read_only=True)
    try:
        return con.execute(sql).fetchall()
    finally:
        con.close()
