"""The project-local Dagster instance: DAGSTER_HOME/dagster.yaml (SQLite storage, the default).

`python -m orchestration.instance` writes it (the Makefile's `run` and `ui` targets call this).
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

from orchestration.settings import REPO_ROOT

# Runs tagged churn/warehouse (every churn_pipeline run) are queued one at a time: the schedule, the
# landing sensor and a backfill launched while another run holds the warehouse wait for it rather
# than fail on DuckDB's single-writer lock (the run queue applies to runs the daemon launches,
# i.e. `make ui`; `make run` executes in its own process and its ingest retries on the lock).
INSTANCE_YAML = """\
telemetry:
  enabled: false
concurrency:
  runs:
    tag_concurrency_limits:
      - key: churn/warehouse
        limit: 1
"""


def ensure_instance_yaml(home: Path) -> Path:
    """Write DAGSTER_HOME/dagster.yaml unless it already limits churn/warehouse runs; an older file
    of this project (telemetry only) is replaced, a file the user wrote is left alone."""
    home.mkdir(parents=True, exist_ok=True)
    path = home / "dagster.yaml"
    old = path.read_text() if path.exists() else ""
    if "churn/warehouse" in old:
        return path
    if old.strip() and old.strip() != "telemetry:\n  enabled: false":
        print(f"note: {path} is yours; add a churn/warehouse run tag limit of 1 to queue runs (see README)",
              file=sys.stderr)
        return path
    tmp = path.with_suffix(".tmp")
    tmp.write_text(INSTANCE_YAML)
    os.replace(tmp, path)
    return path


if __name__ == "__main__":
    print(ensure_instance_yaml(Path(os.environ.get("DAGSTER_HOME", str(REPO_ROOT / ".dagster_home")))))
