"""Blocking batch-quality checks on every raw table (one step for all six tables).

``batch_quality`` fails, and so stops everything downstream (publishing included), when
- the quarantined share of the rows read for the table exceeds CHURN_QUARANTINE_MAX_SHARE
  (default 5%): a few bad rows are set aside, a broken delivery stops the run; or
- a key has versions inside one file that nothing orders (same ``updated_at``, or none):
  the loader cannot tell which one is right, so it keeps both and this check names them.
"""

from __future__ import annotations

import dagster as dg
import duckdb

from orchestration.ingest import manifest
from orchestration.ingest.contract import TABLES
from orchestration.ingest.loader import conflicting_keys, count_conflicting_keys
from orchestration.resources import WarehouseResource
from orchestration.settings import get_settings

CHECK_NAME = "batch_quality"


def evaluate(con: duckdb.DuckDBPyConnection, table_name: str, max_share: float) -> tuple[bool, str, dict]:
    """(passed, one-line description, metadata) for one raw table."""
    table = TABLES[table_name]
    stats = manifest.table_stats(con, table_name)
    read, bad = stats["rows_read"], stats["rows_quarantined"]
    share = bad / read if read else 0.0
    meta = {**stats, "quarantine_share": round(share, 6), "max_share": max_share}
    problems = []
    if share > max_share:
        reasons = con.execute(
            "select split_part(reason, ':', 1), count(*) from raw.quarantine where table_name = ? "
            "group by 1 order by 2 desc, 1 limit 3", [table_name]).fetchall()
        top = ", ".join(f"{r} ({n})" for r, n in reasons)
        problems.append(
            f"{bad} of {read} rows ({share:.1%}) quarantined, above the {max_share:.0%} limit (CHURN_QUARANTINE_MAX_SHARE); "
            f"by column: {top}; fix the delivery (see raw.quarantine) and run again"
        )
    n_conflicts = count_conflicting_keys(con, table_name)
    meta["conflicting_keys"] = n_conflicts
    if n_conflicts:
        first = conflicting_keys(con, table_name, limit=1)[0]
        rows = ", ".join(str(r) for r in first["rows"][:5])
        order = "the same updated_at" if "updated_at" in table.column_names else "nothing to order them by"
        problems.append(
            f"{n_conflicts} {table.primary_key} value(s) have conflicting versions in one file with {order}, "
            f"e.g. {first['key']!r} in {first['file']} rows {rows}; keep one row per {table.primary_key}"
            + (" or give the versions different updated_at" if "updated_at" in table.column_names else "")
        )
    if problems:
        return False, f"raw.{table_name}: " + "; ".join(problems), meta
    return True, f"raw.{table_name}: {bad} of {read} rows quarantined ({share:.1%}), no conflicting keys", meta


def build_quality_check(name: str, tables: list[str]) -> dg.AssetChecksDefinition:
    """One step evaluating ``batch_quality`` for several raw tables."""

    @dg.multi_asset_check(
        name=name,
        specs=[
            dg.AssetCheckSpec(
                name=CHECK_NAME,
                asset=dg.AssetKey(["raw", t]),
                blocking=True,
                description=(
                    "Blocking: the quarantined share of the batch is at most CHURN_QUARANTINE_MAX_SHARE, and no "
                    "key has conflicting versions inside one file."
                ),
            )
            for t in tables
        ],
    )
    def _check(warehouse: WarehouseResource):
        settings = get_settings()
        with warehouse.connect(read_only=True) as con:
            for t in tables:
                passed, description, meta = evaluate(con, t, settings.quarantine_max_share)
                yield dg.AssetCheckResult(
                    asset_key=dg.AssetKey(["raw", t]),
                    check_name=CHECK_NAME,
                    passed=passed,
                    severity=dg.AssetCheckSeverity.ERROR,
                    description=description,
                    metadata=meta,
                )

    return _check


# customers is checked on its own: the other raw tables load after it (orphan keys), and a
# blocking check on customers must not wait for them
quarantine_checks = [
    build_quality_check("raw_customers_batch_quality", ["customers"]),
    build_quality_check("raw_activity_batch_quality", [t for t in TABLES if t != "customers"]),
]
