"""Load landing files into the warehouse's ``raw`` schema, typed per the contract.

Plain functions over a DuckDB connection; the Dagster assets are thin wrappers.

Rules (documented in the README):
- ``<landing>/<table>.csv|.parquet`` or several files in ``<landing>/<table>/``.
- A missing required column is an error naming the file and the column.
- Missing optional columns become typed NULL columns; extra columns are kept.
- A value that cannot be cast to the contract type, or an event dated after the run date
  (plus a tolerance), sends the whole row to ``raw.quarantine`` with a reason.
- Null or duplicate keys are *kept* in the raw table: the blocking GX check on the raw
  batch fails on them with a message naming the table and key, so bad data stops the run.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb

from orchestration.ingest.contract import ACTIVITY_TABLES, LINEAGE_COLUMNS, TABLES, Table

SUPPORTED_SUFFIXES = (".csv", ".parquet", ".tsv", ".txt")
QUARANTINE_DDL = """
create table if not exists raw.quarantine (
    table_name varchar, source_file varchar, row_number bigint, reason varchar,
    raw_record varchar, quarantined_at timestamp
)
"""


class IngestError(ValueError):
    """A landing file breaks the contract; the one-line message names file, column and fix."""


@dataclass
class LoadResult:
    table: str
    files: list[str]
    rows_loaded: int
    rows_quarantined: int
    present: bool  # False = optional table absent, created empty
    extra_columns: list[str] = field(default_factory=list)
    quarantine_reasons: dict[str, int] = field(default_factory=dict)


def find_files(landing_dir: Path, table: str) -> list[Path]:
    """The files that make up one table in a landing folder, in load order (sorted by name)."""
    files: list[Path] = []
    for suffix in (".csv", ".parquet"):
        single = landing_dir / f"{table}{suffix}"
        if single.is_file():
            files.append(single)
    folder = landing_dir / table
    if folder.is_dir():
        files.extend(sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in SUPPORTED_SUFFIXES))
    return files


def check_landing(landing_dir: Path) -> None:
    """Fail fast, with one line, when the landing folder cannot satisfy the contract."""
    if not landing_dir.is_dir():
        raise IngestError(f"{landing_dir}: landing folder does not exist; create it or set CHURN_LANDING_DIR")
    if not find_files(landing_dir, "customers"):
        raise IngestError(f"{landing_dir}: no customers.csv / customers.parquet / customers/ found; customers is required")
    if not any(find_files(landing_dir, t) for t in ACTIVITY_TABLES):
        raise IngestError(
            f"{landing_dir}: needs at least one activity table ({' or '.join(ACTIVITY_TABLES)}) as .csv/.parquet"
        )


def _scan_sql(path: Path) -> str:
    p = str(path).replace("'", "''")
    if path.suffix.lower() == ".parquet":
        return f"read_parquet('{p}')"
    # all_varchar: we do the typing ourselves so a bad value is quarantined, not guessed
    return f"read_csv('{p}', header = true, all_varchar = true, auto_detect = true)"


def _file_columns(con: duckdb.DuckDBPyConnection, path: Path) -> list[str]:
    if path.stat().st_size == 0:
        raise IngestError(f"{path}: the file is empty (0 bytes); deliver it again with a header row and data")
    try:
        rel = con.sql(f"select * from {_scan_sql(path)} limit 0")
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0]
        raise IngestError(f"{path}: cannot be read ({first}); check the encoding (UTF-8) and format") from None
    return [c.lower().strip() for c in rel.columns]


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _typed_select(path: Path, cols: list[str], table: Table, run_ts: datetime) -> tuple[str, list[str]]:
    """SQL that reads one file into the contract's types plus lineage and a quarantine reason."""
    src_cols = {c: c for c in cols}
    exprs, reasons = [], []
    for col in table.columns:
        if col.name in src_cols:
            raw = f"src.{_q(col.name)}"
            if col.sql_type == "VARCHAR":
                expr = f"nullif(trim(cast({raw} as varchar)), '')"
            else:
                text = f"nullif(trim(cast({raw} as varchar)), '')"
                expr = f"try_cast({text} as {col.sql_type})"
                reasons.append(
                    f"case when {text} is not null and {expr} is null then "
                    f"'{col.name}: cannot parse ' || {text} || ' as {col.sql_type}' end"
                )
        else:
            expr = f"cast(null as {col.sql_type})"
        exprs.append(f"{expr} as {_q(col.name)}")
    extras = [c for c in cols if c not in table.column_names and c not in LINEAGE_COLUMNS]
    for c in extras:
        exprs.append(f"src.{_q(c)} as {_q(c)}")
    # events dated after the run date are impossible; quarantine rather than let them skew as-of
    limit = (run_ts.date() + timedelta(days=1)).isoformat()
    for dc in table.date_columns:
        if dc in src_cols:
            expr = f"try_cast(nullif(trim(cast(src.{_q(dc)} as varchar)), '') as {table.column(dc).sql_type})"
            reasons.append(f"case when {expr} > date '{limit}' then '{dc}: date in the future' end")
    reason = "concat_ws('; ', " + ", ".join(reasons) + ")" if reasons else "''"
    p = str(path).replace("'", "''")
    sql = (
        f"select {', '.join(exprs)}, '{p}' as _source_file, "
        f"cast(row_number() over () as bigint) as _row_number, "
        f"timestamp '{run_ts.strftime('%Y-%m-%d %H:%M:%S')}' as _loaded_at, "
        f"{reason} as _reason, to_json(src) as _raw "
        f"from {_scan_sql(path)} src"
    )
    return sql, extras


def load_table(
    con: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    table_name: str,
    *,
    run_ts: datetime | None = None,
) -> LoadResult:
    """(Re)build ``raw.<table_name>`` from the landing folder. Returns counts for metadata."""
    table = TABLES[table_name]
    run_ts = run_ts or datetime.now(timezone.utc).replace(tzinfo=None)
    con.execute("create schema if not exists raw")
    con.execute(QUARANTINE_DDL)
    con.execute("delete from raw.quarantine where table_name = ?", [table_name])
    files = find_files(landing_dir, table_name)
    typed_cols = ", ".join(f"cast(null as {c.sql_type}) as {_q(c.name)}" for c in table.columns)
    lineage = "cast(null as varchar) as _source_file, cast(null as bigint) as _row_number, cast(null as timestamp) as _loaded_at"
    if not files:
        if table_name == "customers":
            raise IngestError(f"{landing_dir}: customers table missing; add customers.csv or customers.parquet")
        con.execute(f"create or replace table raw.{table_name} as select {typed_cols}, {lineage} limit 0")
        return LoadResult(table_name, [], 0, 0, present=False)

    selects, all_extras = [], []
    for path in files:
        cols = _file_columns(con, path)
        if len(cols) != len(set(cols)):
            dupes = sorted({c for c in cols if cols.count(c) > 1})
            raise IngestError(f"{path}: duplicate column name(s) {dupes}; rename them so each header is unique")
        missing = [c for c in table.required_columns if c not in cols]
        if missing:
            raise IngestError(
                f"{path}: required column '{missing[0]}' is missing (found: {', '.join(cols[:12])}); "
                f"rename or add it per the {table_name} contract"
            )
        sql, extras = _typed_select(path, cols, table, run_ts)
        selects.append(sql)
        all_extras.extend(e for e in extras if e not in all_extras)

    union = " union all by name ".join(f"({s})" for s in selects)
    con.execute(f"create or replace temp table _incoming as {union}")
    n_total = con.execute("select count(*) from _incoming").fetchone()[0]  # type: ignore[index]
    con.execute(
        "insert into raw.quarantine select ?, _source_file, _row_number, _reason, _raw, ? "
        "from _incoming where _reason <> ''",
        [table_name, run_ts],
    )
    reasons = dict(
        con.execute(
            "select split_part(_reason, ':', 1) as col, count(*) from _incoming where _reason <> '' group by 1 order by 1"
        ).fetchall()
    )
    n_bad = sum(reasons.values())
    contract_cols = ", ".join(_q(c) for c in table.column_names)
    extra_cols = "".join(f", {_q(c)}" for c in all_extras)
    con.execute(
        f"create or replace table raw.{table_name} as select {contract_cols}{extra_cols}, "
        f"_source_file, _row_number, _loaded_at from _incoming where _reason = '' order by _source_file, _row_number"
    )
    con.execute("drop table _incoming")
    if n_total == 0 and table_name == "customers":
        raise IngestError(
            f"{files[0]}: customers has a header but no data rows; deliver a non-empty customers file"
        )
    return LoadResult(
        table_name,
        [str(f) for f in files],
        rows_loaded=n_total - n_bad,
        rows_quarantined=n_bad,
        present=True,
        extra_columns=all_extras,
        quarantine_reasons={str(k): int(v) for k, v in reasons.items()},
    )


def quarantine_sample(con: duckdb.DuckDBPyConnection, table_name: str, limit: int = 5) -> list[dict]:
    rows = con.execute(
        "select source_file, row_number, reason, raw_record from raw.quarantine where table_name = ? "
        "order by source_file, row_number limit ?",
        [table_name, limit],
    ).fetchall()
    return [dict(zip(("file", "row", "reason", "record"), r)) for r in rows]


def table_frame_sql(table_name: str) -> str:
    """SQL to read the batch just loaded (used by the GX check)."""
    return f"select * from raw.{table_name}"


def dump(obj: object) -> str:
    return json.dumps(obj, default=str)


def default_as_of(con: duckdb.DuckDBPyConnection) -> date | None:
    """Latest event date in the raw data (the as-of date when none is configured)."""
    parts = []
    for t in TABLES.values():
        for dc in t.date_columns:
            if dc in ("updated_at",):
                continue
            parts.append(f"select max(cast({_q(dc)} as date)) as d from raw.{t.name}")
    row = con.execute(f"select max(d) from ({' union all '.join(parts)})").fetchone()
    return row[0] if row else None
