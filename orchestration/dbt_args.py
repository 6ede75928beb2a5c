"""dbt arguments built by small pure functions (unit-tested in tests/test_dbt_args.py)."""

from __future__ import annotations

import json
from datetime import date
from typing import Any

from orchestration.settings import Settings


def dbt_vars(settings: Settings) -> dict[str, Any]:
    """The dbt vars that carry the churn definition and grain from the typed settings."""
    out: dict[str, Any] = {
        "churn_definition": settings.churn_definition,
        "inactivity_days": settings.inactivity_days,
        "grace_days": settings.grace_days,
        "period_grain": settings.period_grain,
        "as_of_date": settings.as_of_date.isoformat() if settings.as_of_date else None,
        "activity_sources": list(settings.activity_sources),
        # training points above this many are sampled in dbt, before features are computed for them
        "max_train_rows": settings.max_train_rows,
        "seed": settings.seed,
    }
    if settings.segment_dimensions:
        out["segment_dimensions"] = list(settings.segment_dimensions)
    return out


def dbt_build_args(settings: Settings, extra: list[str] | None = None) -> list[str]:
    """`dbt build` with the vars as compact JSON (dbt parses --vars as YAML, JSON is a subset).

    Incremental models rebuild only the periods new data touches, unless ``settings.full_refresh``
    (CHURN_FULL_REFRESH=1) asks for `--full-refresh`.
    """
    args = ["build", "--vars", json.dumps(dbt_vars(settings), sort_keys=True, separators=(",", ":")), *(extra or [])]
    if settings.full_refresh:
        args.append("--full-refresh")
    return args


def dbt_env(settings: Settings, recompute_from: date | None = None) -> dict[str, str]:
    """Environment the dbt subprocess needs: where the private warehouse is, and the first data day
    of a partitioned run (empty = none; int_incremental_boundary reads it).

    The day goes by environment, not --vars: dbt re-parses the whole project when a var changes,
    but only the files that read an environment variable whose value changed.
    """
    return {"CHURN_WAREHOUSE_PATH": str(settings.warehouse_path),
            # profiles.yml hands it to DuckDB: the same bound as the pipeline's own connections
            "CHURN_DUCKDB_MEMORY_LIMIT": settings.duckdb_memory_limit,
            "CHURN_RECOMPUTE_FROM": recompute_from.isoformat() if recompute_from else ""}
