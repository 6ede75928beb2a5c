"""Blocking Great Expectations checks on each raw batch and on the churn facts.

A failing check stops every downstream asset in the run, publishing included.

Bounded memory: a raw table of up to ``CHURN_GX_FULL_FRAME_ROWS`` rows (default 200,000) is
read whole into pandas and validated as it is. A larger one is never read whole: DuckDB
first selects the rows that could fail any expectation of the suite (null or duplicated
keys, values out of range or outside the enumeration, dates out of order; see
:func:`suspect_condition`) plus the table's first ``SAMPLE_ROWS`` rows, and GX validates that frame.
Every expectation of a raw suite is a per-row test (or a uniqueness test, for which all rows
with a duplicated key are selected), so the frame fails exactly the expectations the whole
table fails, with the same counts and sample values; clean rows left out cannot change a
result. At most ``SUSPECT_ROW_LIMIT`` suspect rows are read; above that the counts are lower
bounds and the description says so. A suite with an expectation this module does not know
is validated on the whole table, as before.
"""

import os

import dagster as dg

from expectations.runner import validate_frame
from expectations.suites import churn_period_suite, raw_table_suite
from orchestration.ingest.contract import TABLES
from orchestration.resources import WarehouseResource
from orchestration.settings import get_settings


def _result(summary, what: str) -> dg.AssetCheckResult:
    meta = {
        "evaluated": summary.evaluated,
        "successful": summary.successful,
        "failures": dg.MetadataValue.json(summary.failures),
        "summary": dg.MetadataValue.md(summary.to_markdown()),
    }
    if summary.docs_index:
        meta["data_docs"] = dg.MetadataValue.path(summary.docs_index)
    return dg.AssetCheckResult(
        passed=summary.success,
        severity=dg.AssetCheckSeverity.ERROR,
        description=(f"{what}: all {summary.evaluated} expectations passed" if summary.success
                     else f"{what}: " + " | ".join(summary.failures[:5])),
        metadata=meta,
    )


LINEAGE = "_source_file, _row_number, _loaded_at"
SAMPLE_ROWS = 1_000  # the table's first rows, always validated with the suspects (so the frame is never empty)
SUSPECT_ROW_LIMIT = 500_000


def full_frame_rows() -> int:
    return int(os.environ.get("CHURN_GX_FULL_FRAME_ROWS", "200000"))


def _quote_ident(name: str) -> str:
    return '"' + str(name).replace('"', '""') + '"'


def _literal(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    return "'" + str(value).replace("'", "''") + "'"


def suspect_condition(suite, relation: str, batch: str | None = None) -> str | None:
    """A SQL condition true for every row that could fail an expectation of ``suite``
    (a superset is fine: extra clean rows do not change a result), or None when the suite
    has an expectation that is not a per-row or uniqueness test."""
    parts: list[str] = []
    for exp in suite.expectations:
        kind = exp.expectation_type
        kw = dict(exp.configuration.kwargs)
        if kw.get("row_condition") or kw.get("mostly", 1) != 1:
            return None
        if kind == "expect_column_to_exist":
            continue  # the frame has the table's columns whatever rows it holds
        if kind == "expect_column_values_to_not_be_null":
            parts.append(f"{_quote_ident(kw['column'])} is null")
        elif kind == "expect_column_values_to_be_unique":
            c = _quote_ident(kw["column"])
            within = f" and ({batch})" if batch else ""
            parts.append(f"{c} in (select {c} from {relation} where {c} is not null{within} group by {c} having count(*) > 1)")
        elif kind == "expect_column_values_to_be_between":
            c = _quote_ident(kw["column"])
            out = []
            if kw.get("min_value") is not None:
                out.append(f"{c} {'<=' if kw.get('strict_min') else '<'} {_literal(kw['min_value'])}")
            if kw.get("max_value") is not None:
                out.append(f"{c} {'>=' if kw.get('strict_max') else '>'} {_literal(kw['max_value'])}")
            if out:
                # NaN counts as missing in pandas but compares greater in DuckDB: select it too
                parts.append(f"({c} is not null and ({' or '.join(out)}))")
        elif kind == "expect_column_values_to_be_in_set":
            c = _quote_ident(kw["column"])
            values = ", ".join(_literal(v) for v in kw["value_set"])
            parts.append(f"({c} is not null and {c} not in ({values}))" if values else f"{c} is not null")
        elif kind == "expect_column_pair_values_a_to_be_greater_than_b":
            if kw.get("ignore_row_if", "both_values_are_missing") != "either_value_is_missing":
                return None
            a, b = _quote_ident(kw["column_A"]), _quote_ident(kw["column_B"])
            op = ">=" if kw.get("or_equal") else ">"
            parts.append(f"({a} is not null and {b} is not null and not ({a} {op} {b}))")
        else:
            return None
    return " or ".join(f"({p})" for p in parts) if parts else "false"


def batch_filter(con, table_name: str) -> tuple[str | None, str]:
    """The rows of raw.<table_name> not yet validated and consumed: (SQL condition or None = all, what).

    After an append (only new files read, no key of the new rows already loaded: see the loader)
    the rows loaded since dbt last built from raw (the watermark in meta.incremental_state) are the
    batch; a failed check stops dbt, so a rejected batch stays in the next run's batch. After a full
    rebuild, or without that state, the whole table is validated.
    """
    try:
        row = con.execute(
            "select s.mode, s.full_built_at, (select min(watermark) from meta.incremental_state) "
            "from raw.landing_state s where s.table_name = ?",
            [table_name]).fetchone()
    except Exception:  # noqa: BLE001 - no state tables yet (first run): validate everything
        return None, "whole table"
    if row is None:
        return None, "whole table"
    mode, full_built_at, watermark = row
    if mode not in ("append", "unchanged") or watermark is None or full_built_at is None or full_built_at > watermark:
        return None, "whole table"
    return f"_loaded_at > timestamp '{watermark.isoformat(sep=' ')}'", f"rows loaded after {watermark.isoformat(sep=' ')}"


def raw_frame(con, table_name: str, suite, *, full_frame_limit: int | None = None, batch: str | None = None):
    """The frame GX validates for raw.<table_name> (see the module docstring) and a summary dict.

    ``batch``: a SQL condition selecting the incoming batch (see :func:`batch_filter`); None = all rows.
    """
    relation = f"raw.{_quote_ident(table_name)}"
    where = f"where ({batch})" if batch else ""
    also = f"({batch}) and " if batch else ""
    limit = full_frame_rows() if full_frame_limit is None else full_frame_limit
    total = con.execute(f"select count(*) from {relation} {where}").fetchall()[0][0]
    condition = suspect_condition(suite, relation, batch) if total > limit else None
    if condition is None:
        # drop the lineage columns: they are ours, not the batch's
        df = con.sql(f"select * exclude ({LINEAGE}) from {relation} {where}").df()
        return df, {"table_rows": int(total), "rows_validated": int(len(df)), "frame": "whole table"}
    # the rows that could fail, and the first rows of the table; in table order, so GX's
    # sample values are the first offending ones, as on the whole table
    suspects = con.sql(
        f"select rowid as _rowid, * exclude ({LINEAGE}) from {relation} where {also}({condition}) "
        f"order by rowid limit {SUSPECT_ROW_LIMIT + 1}"
    ).df()
    truncated = len(suspects) > SUSPECT_ROW_LIMIT
    suspects = suspects.iloc[:SUSPECT_ROW_LIMIT]
    sample = con.sql(
        f"select rowid as _rowid, * exclude ({LINEAGE}) from {relation} {where} order by rowid limit {SAMPLE_ROWS}"
    ).df()
    import pandas as pd

    df = (pd.concat([sample, suspects], ignore_index=True).drop_duplicates("_rowid")
          .sort_values("_rowid", kind="stable").drop(columns="_rowid").reset_index(drop=True))
    return df, {"table_rows": int(total), "rows_validated": int(len(df)), "truncated": truncated,
                "frame": f"{len(suspects):,} suspect rows + the first {SAMPLE_ROWS:,} rows"}


def build_raw_check(table_name: str) -> dg.AssetChecksDefinition:
    @dg.asset_check(
        asset=dg.AssetKey(["raw", table_name]),
        name=f"gx_raw_{table_name}",
        blocking=True,
        description=f"GX suite raw_{table_name}: required columns, unique non-null keys, ranges, enums, date order.",
    )
    def _check(warehouse: WarehouseResource) -> dg.AssetCheckResult:
        settings = get_settings()
        suite = raw_table_suite(TABLES[table_name])
        with warehouse.connect(read_only=True) as con:
            batch, batch_text = batch_filter(con, table_name)
            df, info = raw_frame(con, table_name, suite, batch=batch)
        summary = validate_frame(df, suite, docs_dir=settings.gx_docs_dir, batch_name=f"raw_{table_name}")
        result = _result(summary, f"raw.{table_name}")
        # table_rows: the rows of the batch validated (the whole table after a full load)
        extra = {"table_rows": info["table_rows"], "rows_validated": info["rows_validated"], "frame": info["frame"],
                 "batch": batch_text}
        description = result.description
        if info.get("truncated") and not summary.success:
            description += f" (counts from the first {SUSPECT_ROW_LIMIT:,} suspect rows: lower bounds)"
        return dg.AssetCheckResult(passed=result.passed, severity=result.severity, description=description,
                                   metadata={**result.metadata, **extra})

    return _check


@dg.asset_check(
    asset=dg.AssetKey(["marts", "fct_churn_period"]),
    name="gx_fct_churn_period",
    blocking=True,
    description="GX suite fct_churn_period: unique periods, non-negative counts, 0 <= churn_rate <= 1.",
)
def gx_fct_churn_period(warehouse: WarehouseResource) -> dg.AssetCheckResult:
    settings = get_settings()
    with warehouse.connect(read_only=True) as con:
        df = con.sql("select * from marts.fct_churn_period").df()
    summary = validate_frame(df, churn_period_suite(), docs_dir=settings.gx_docs_dir, batch_name="fct_churn_period")
    return _result(summary, "marts.fct_churn_period")


raw_checks = [build_raw_check(t) for t in TABLES]
all_checks = [*raw_checks, gx_fct_churn_period]
