"""Load landing files into the warehouse's ``raw`` schema, typed per the contract.

Plain functions over a DuckDB connection; the Dagster assets are thin wrappers.

Rules (the README's "Data quality and failure behaviour" section lists every case):

- ``<landing>/<table>.csv|.parquet`` or several files in ``<landing>/<table>/``.
- A file that cannot be read as a whole (empty, not UTF-8, ragged CSV rows, a missing required
  column, an unsafe or duplicate column name, an unsupported file type) stops the run with ONE line
  naming the file, the column or line, and the fix (:class:`IngestError`).
- A row with a bad value (unparsable or non-ISO date, non-numeric or non-finite number, a value out
  of range, an unknown enumeration value, a missing key or required value, an event after the run
  date, an end before its start, an order for a customer not in ``customers``) goes to
  ``raw.quarantine`` with the table, file, row number, every reason and the raw record.
- Duplicates: identical rows (also across files, e.g. a file delivered twice under two names) keep
  one copy; different versions of a key resolve to the latest by ``updated_at`` (customers), then by
  load order (the later delivered file version, then the later row). Dropped rows are listed in
  ``raw.duplicates``. Versions of a key inside ONE file that nothing orders (same ``updated_at`` or
  none) are kept in the raw table, so the blocking checks on it fail and name them.
- Every file version is recorded in ``raw.landing_manifest`` with its checksum; a table whose
  files, rules and inputs are unchanged is not rebuilt (see :mod:`orchestration.ingest.manifest`).
- Everything a table load writes happens in one transaction.
"""

from __future__ import annotations

import csv
import difflib
import io
import json
import re
import uuid
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from pathlib import Path

import duckdb

from orchestration.ingest import manifest
from orchestration.ingest.contract import ACTIVITY_TABLES, LINEAGE_COLUMNS, TABLES, Column, Table
from orchestration.settings import pause_for_tests

# Bump when the loading rules change: tables whose files did not change are rebuilt once.
LOADER_VERSION = "2"

CSV_SUFFIXES = (".csv", ".tsv", ".txt")
SUPPORTED_SUFFIXES = (*CSV_SUFFIXES, ".parquet")
# files a copy is still writing, editor and OS leftovers: skipped, never loaded
_IN_FLIGHT = re.compile(r"(^[.~]|\.(tmp|part|partial|crdownload|swp|bak|old|orig)$|^_)", re.IGNORECASE)
IDENTIFIER = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
MONEY_COLUMNS = ("mrr", "amount")
# date columns that may lie in the future: a subscription may be scheduled to end next month
FUTURE_ALLOWED = ("end_date",)
# (earlier, later, later may equal earlier?)  rows breaking the order are quarantined
DATE_ORDER = (("start_date", "end_date", False), ("opened_at", "resolved_at", True))
ISO_DATE = r"^[0-9]{4}-[0-9]{2}-[0-9]{2}([ T][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,9})?)?)?(Z|[+-][0-9]{2}(:?[0-9]{2})?)?$"
TZ_SUFFIX = r"(Z|[+-][0-9]{2}(:?[0-9]{2})?)$"
INTEGER = r"^[+-]?[0-9]{1,18}(\.0*)?$"

QUARANTINE_DDL = """
create table if not exists raw.quarantine (
    table_name varchar, source_file varchar, row_number bigint, reason varchar,
    raw_record varchar, quarantined_at timestamp
)
"""
DUPLICATES_DDL = """
create table if not exists raw.duplicates (
    table_name varchar, source_file varchar, row_number bigint, key_value varchar, kind varchar,
    kept_file varchar, kept_row bigint
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
    status: str = "loaded"  # loaded | unchanged | absent
    rows_read: int = 0
    rows_duplicate: int = 0
    conflicting_keys: int = 0
    new_files: list[str] = field(default_factory=list)
    changed_files: list[str] = field(default_factory=list)
    removed_files: list[str] = field(default_factory=list)
    identical_files: list[list[str]] = field(default_factory=list)
    load_mode: str = "full"  # full | append | unchanged (see load_table)
    rows_appended: int = 0  # rows this load added to the table (full: every row kept)

    @property
    def quarantine_share(self) -> float:
        return self.rows_quarantined / self.rows_read if self.rows_read else 0.0


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _lit(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


# ----------------------------------------------------------------------------- landing files


def _in_flight(path: Path) -> bool:
    return bool(_IN_FLIGHT.search(path.name))


def find_files(landing_dir: Path, table: str) -> list[Path]:
    """The files that make up one table in a landing folder (sorted by name).

    Hidden, temporary and partial files (``.x``, ``~x``, ``_x``, ``*.tmp``, ``*.part`` ...) are skipped;
    any other file of an unsupported type in ``<table>/`` stops the run.
    """
    files: list[Path] = []
    for suffix in (".csv", ".parquet"):
        single = landing_dir / f"{table}{suffix}"
        if single.is_file():
            files.append(single)
    folder = landing_dir / table
    if folder.is_dir():
        for p in sorted(folder.iterdir()):
            if not p.is_file() or _in_flight(p):
                continue
            if p.suffix.lower() not in SUPPORTED_SUFFIXES:
                raise IngestError(
                    f"{p}: unsupported file type '{p.suffix or '(none)'}' in {table}/; deliver CSV (UTF-8) or "
                    "Parquet, or move the file out of the landing folder"
                )
            files.append(p)
    return files


def check_landing(landing_dir: Path) -> None:
    """Fail fast, with one line, when the landing folder cannot satisfy the contract."""
    if not landing_dir.is_dir():
        raise IngestError(f"{landing_dir}: landing folder does not exist; create it or set CHURN_LANDING_DIR")
    expected = {f"{t}{suffix}" for t in TABLES for suffix in (".csv", ".parquet")}
    for entry in sorted(landing_dir.iterdir()):
        if _in_flight(entry) or entry.name in expected or (entry.is_dir() and entry.name in TABLES):
            continue
        stem = entry.name.split(".")[0].lower()
        close = difflib.get_close_matches(stem, list(TABLES), n=1, cutoff=0.75)
        if not close:
            continue  # unrelated files (README, notes) are ignored
        if entry.is_dir():
            raise IngestError(f"{entry}: folder '{entry.name}' is not read; rename it to {close[0]}/")
        raise IngestError(
            f"{entry}: '{entry.name}' is not read; name it {close[0]}.csv (UTF-8) or {close[0]}.parquet, "
            f"or put it in {close[0]}/"
        )
    if not find_files(landing_dir, "customers"):
        raise IngestError(f"{landing_dir}: no customers.csv / customers.parquet / customers/ found; customers is required")
    if not any(find_files(landing_dir, t) for t in ACTIVITY_TABLES):
        raise IngestError(
            f"{landing_dir}: needs at least one activity table ({' or '.join(ACTIVITY_TABLES)}) as .csv/.parquet"
        )


# ----------------------------------------------------------------------------- reading one file


def _sniff_header(path: Path) -> tuple[str, list[str]]:
    """Delimiter and raw header names of a CSV file (UTF-8, BOM allowed)."""
    with path.open("rb") as f:
        head = f.read(1 << 16).decode("utf-8-sig", errors="replace")
    first = head.splitlines()[0] if head.strip() else ""
    unquoted = re.sub(r'"[^"]*"', "", first)
    counts = {d: unquoted.count(d) for d in (",", ";", "\t", "|")}
    delim = max(counts, key=lambda d: (counts[d], d == ","))
    if counts[delim] == 0:
        delim = ","
    header = next(csv.reader(io.StringIO(head), delimiter=delim, quotechar='"'), [])
    return delim, header


def _normalise(names: list[str], path: Path, table: Table) -> list[str]:
    out = [n.replace("\ufeff", "").strip().lower() for n in names]
    if not any(out):
        raise IngestError(f"{path}: has no header row; the first line must name the columns (e.g. {table.primary_key},...)")
    dupes = sorted({c for c in out if out.count(c) > 1})
    if dupes:
        raise IngestError(f"{path}: duplicate column name(s) {dupes}; rename them so each header is unique")
    for name in out:
        if name in LINEAGE_COLUMNS:
            raise IngestError(f"{path}: column '{name}' is reserved for lineage; rename or drop it")
        if not IDENTIFIER.match(name):
            shown = name if len(name) <= 60 else name[:57] + "..."
            suggestion = re.sub(r"[^a-z0-9]+", "_", name).strip("_") or "column"
            if suggestion[0].isdigit():
                suggestion = "c_" + suggestion
            raise IngestError(
                f"{path}: column name {shown!r} is not allowed (only lower-case letters, digits and _); "
                f"rename it, e.g. to {suggestion[:63]!r}"
            )
    missing = [c for c in table.required_columns if c not in out]
    if missing:
        want = missing[0]
        squash = {re.sub(r"[^a-z0-9]", "", c): c for c in out}
        hint = squash.get(re.sub(r"[^a-z0-9]", "", want)) or next(iter(difflib.get_close_matches(want, out, n=1, cutoff=0.7)), None)
        found = ", ".join(out[:12]) + (", ..." if len(out) > 12 else "")
        if hint:
            raise IngestError(f"{path}: required column '{want}' is missing but '{hint}' looks like it; rename '{hint}' "
                              f"to '{want}' (the {table.name} contract)")
        raise IngestError(
            f"{path}: required column '{want}' is missing (found: {found}); rename or add it per the {table.name} contract"
        )
    return out


def _read_file(con: duckdb.DuckDBPyConnection, path: Path, table: Table, digest: manifest.FileDigest,
               target: str) -> tuple[list[str], dict[str, str]]:
    """Read one file into temp table ``target`` (normalised column names + ``_row_number``).

    Runs outside the load transaction (reading writes nothing the warehouse keeps), so a file
    that cannot be read stops the load before anything changes. Returns the normalised columns
    and their DuckDB types.
    """
    if digest.size == 0:
        raise IngestError(f"{path}: the file is empty (0 bytes); deliver it again with a header row and data")
    con.execute(f"drop table if exists {target}")
    if path.suffix.lower() == ".parquet":
        try:
            described = con.execute("describe select * from read_parquet(?)", [str(path)]).fetchall()
        except duckdb.Error as exc:
            first = str(exc).splitlines()[0]
            raise IngestError(f"{path}: cannot be read as Parquet ({first}); deliver the file again") from None
        raw = [r[0] for r in described]
        names = _normalise(raw, path, table)
        select = ", ".join(f"{_q(r)} as {_q(n)}" for r, n in zip(raw, names))
        try:
            con.execute(
                f"create temp table {target} as select {select}, cast(file_row_number + 1 as bigint) as _row_number "
                "from read_parquet(?, file_row_number = true)",
                [str(path)],
            )
        except duckdb.Error as exc:
            first = str(exc).splitlines()[0]
            raise IngestError(f"{path}: cannot be read as Parquet ({first}); deliver the file again") from None
        return names, {n: r[1] for n, r in zip(names, described)}

    if digest.encoding_problem:
        source = "utf-16" if "UTF-16" in digest.encoding_problem else "latin1"
        raise IngestError(
            f"{path}: {digest.encoding_problem}; save the file as UTF-8 (e.g. iconv -f {source} -t utf-8 in.csv > out.csv)"
        )
    delim, header = _sniff_header(path)
    names = _normalise(header, path, table)
    columns = "{" + ", ".join(f"'c{i}': 'VARCHAR'" for i in range(len(names))) + "}"
    con.execute("drop table if exists _rejects")
    con.execute("drop table if exists _reject_scans")
    try:
        con.execute(
            "create temp table _file_raw as select * from read_csv($path, delim = $delim, quote = '\"', escape = '\"', "
            f"header = true, auto_detect = false, columns = {columns}, store_rejects = true, "
            "rejects_table = '_rejects', rejects_scan = '_reject_scans')",
            {"path": str(path), "delim": delim},
        )
    except duckdb.Error as exc:
        first = str(exc).splitlines()[0]
        raise IngestError(f"{path}: cannot be read as CSV ({first}); check the file is a complete, comma-separated CSV") from None
    rejects = con.execute("select line, error_message, csv_line from _rejects order by line limit 3").fetchall()
    con.execute("drop table if exists _rejects")
    con.execute("drop table if exists _reject_scans")
    if rejects:
        con.execute("drop table _file_raw")
        line, message, text = rejects[0]
        shown = (text or "")[:60]
        more = f" (and {len(rejects) - 1}+ more)" if len(rejects) > 1 else ""
        raise IngestError(
            f"{path}: line {line} does not match the header ({message}: {shown!r}){more}; "
            f"quote values that contain '{delim}' and give every row {len(names)} fields"
        )
    select = ", ".join(f"c{i} as {_q(n)}" for i, n in enumerate(names))
    # rowid follows the file's record order (insertion order is preserved; committed table, so plain rowids)
    con.execute(f"create temp table {target} as select {select}, cast(rowid + 1 as bigint) as _row_number from _file_raw")
    con.execute("drop table _file_raw")
    return names, {n: "VARCHAR" for n in names}


# ----------------------------------------------------------------------------- typing rules


def _date_format_sql(text: str) -> str:
    """SQL naming the format of a non-ISO date string (for the quarantine reason)."""
    return (
        f"case when regexp_full_match({text}, '[0-9]{{1,2}}\\.[0-9]{{1,2}}\\.[0-9]{{2,4}}') then 'DD.MM.YYYY' "
        f"when regexp_full_match({text}, '([0-9]{{1,2}})/([0-9]{{1,2}})/[0-9]{{2,4}}') then "
        f"  case when cast(split_part({text}, '/', 1) as int) > 12 then 'DD/MM/YYYY' "
        f"       when cast(split_part({text}, '/', 2) as int) > 12 then 'MM/DD/YYYY' "
        f"       else 'MM/DD/YYYY or DD/MM/YYYY (ambiguous)' end "
        f"when regexp_full_match({text}, '[0-9]{{4}}/[0-9]{{1,2}}/[0-9]{{1,2}}') then 'YYYY/MM/DD' "
        f"when regexp_full_match({text}, '[0-9]{{8}}') then 'YYYYMMDD' "
        f"when regexp_full_match({text}, '[0-9]{{4}}-[0-9]{{1,2}}-[0-9]{{1,2}}.*') then 'YYYY-M-D (not zero-padded)' "
        f"when regexp_full_match({text}, '[0-9]{{9,13}}') then 'a number (epoch?)' "
        f"else 'not a date' end"
    )


def _column_sql(col: Column, src_type: str | None, rules: _Rules) -> tuple[str, list[str]]:
    """(typed value expression, reason expressions) for one contract column present in the file."""
    raw = f"src.{_q(col.name)}"
    text = f"nullif(trim(cast({raw} as varchar)), '')"
    shown = f"'''' || left({text}, 40) || ''''"
    name = col.name
    reasons: list[str] = []
    native = src_type is not None and src_type.split("(")[0] == col.sql_type
    numeric_src = src_type is not None and src_type.split("(")[0] in (
        "DOUBLE", "FLOAT", "BIGINT", "INTEGER", "SMALLINT", "TINYINT", "HUGEINT", "DECIMAL", "UBIGINT", "UINTEGER")
    if col.sql_type == "VARCHAR":
        value = text
        if col.allowed:
            value = f"lower({text})"
            allowed = ", ".join(_lit(a) for a in col.allowed)
            reasons.append(f"case when {value} not in ({allowed}) then '{name}: ' || {shown} || "
                           f"' is not one of {', '.join(col.allowed)}' end")
    elif col.sql_type == "DOUBLE":
        value = f"cast({raw} as double)" if numeric_src else f"try_cast({text} as double)"
        if not numeric_src:
            reasons.append(f"case when {text} is not null and {value} is null then '{name}: ' || {shown} || "
                           f"' is not a number' || case when {text} like '%,%' then ' (use . as the decimal separator, "
                           f"no thousands separators)' else '' end end")
        reasons.append(f"case when {value} is not null and not isfinite({value}) then '{name}: ' || {shown} || "
                       f"' is not a finite number' end")
    elif col.sql_type == "BIGINT":
        if numeric_src and src_type.split("(")[0] not in ("DOUBLE", "FLOAT", "DECIMAL"):
            value = f"cast({raw} as bigint)"
        else:
            ok = f"regexp_full_match({text}, '{INTEGER[1:-1]}')"
            value = f"case when {ok} then try_cast({text} as bigint) end"
            reasons.append(f"case when {text} is not null and {value} is null then '{name}: ' || {shown} || "
                           f"' is not a whole number' end")
    elif col.sql_type in ("DATE", "TIMESTAMP"):
        if native:
            value = raw
        else:
            iso = f"regexp_full_match({text}, '{ISO_DATE[1:-1]}')"
            if col.sql_type == "DATE":
                parsed = f"try_cast(left({text}, 10) as date)"
            else:
                parsed = (f"case when regexp_matches({text}, '{TZ_SUFFIX}') "
                          f"then timezone('UTC', try_cast({text} as timestamptz)) else try_cast({text} as timestamp) end")
            value = f"case when {iso} then {parsed} end"
            reasons.append(
                f"case when {text} is not null and not {iso} then '{name}: ' || {shown} || ' is ' || "
                f"{_date_format_sql(text)} || '; only ISO 8601 (YYYY-MM-DD) is accepted' "
                f"when {text} is not null and {value} is null then '{name}: ' || {shown} || ' is not a valid calendar date' end"
            )
    else:  # pragma: no cover - the contract only uses the types above
        value = f"try_cast({text} as {col.sql_type})"
    # range rules from the contract, plus a plausibility ceiling for money
    lo, hi = col.min_value, col.max_value
    if name in MONEY_COLUMNS:
        hi = rules.max_money_value if hi is None else min(hi, rules.max_money_value)
    finite = f"isfinite({value})" if col.sql_type == "DOUBLE" else "true"
    if lo is not None:
        reasons.append(f"case when {finite} and {value} < {lo!r} then '{name}: ' || cast({value} as varchar) || ' is below the minimum {lo:g}' end")
    if hi is not None:
        hint = " (CHURN_MAX_MONEY_VALUE; wrong unit, e.g. cents?)" if name in MONEY_COLUMNS else ""
        reasons.append(f"case when {finite} and {value} > {hi!r} then '{name}: ' || cast({value} as varchar) || "
                       f"' is above the maximum {hi:g}{hint}' end")
    return value, reasons


@dataclass(frozen=True)
class _Rules:
    run_date: date
    future_tolerance_days: int
    max_money_value: float

    @property
    def latest_allowed(self) -> date:
        return self.run_date + timedelta(days=self.future_tolerance_days)


def _typed_sql(table: Table, names: list[str], types: dict[str, str], rules: _Rules,
               source: str, version: manifest.FileVersion, check_customers: bool = False) -> tuple[str, list[str]]:
    """SELECT over ``<source> src`` giving contract types, lineage and the list of reasons per row.

    The file's lineage values are literals, so the SELECTs of several files can be one UNION.
    ``check_customers``: child rows must belong to a customer in raw.customers. ``_raw`` (the
    row as delivered, as JSON) is built only for rows with a reason: only the quarantine reads
    it, and building it for every row of a large event table is costly.
    """
    exprs, reasons = [], []
    typed: dict[str, str] = {}
    for col in table.columns:
        if col.name in names:
            value, col_reasons = _column_sql(col, types.get(col.name), rules)
            reasons.extend(col_reasons)
        else:
            value = f"cast(null as {col.sql_type})"
        typed[col.name] = value
        exprs.append(f"{value} as {_q(col.name)}")
        if (col.required or col.name == table.primary_key) and col.name in names:
            what = "primary key" if col.name == table.primary_key else "required value"
            reasons.append(f"case when nullif(trim(cast(src.{_q(col.name)} as varchar)), '') is null "
                           f"then '{col.name}: {what} is missing' end")
    extras = [c for c in names if c not in table.column_names]
    for c in extras:
        exprs.append(f"src.{_q(c)} as {_q(c)}")
    limit = rules.latest_allowed.isoformat()
    for dc in table.date_columns:
        if dc in names and dc not in FUTURE_ALLOWED:
            reasons.append(f"case when cast({typed[dc]} as date) > date '{limit}' then '{dc}: ' || "
                           f"cast(cast({typed[dc]} as date) as varchar) || ' is after the run date {rules.run_date.isoformat()}' end")
    for earlier, later, or_equal in DATE_ORDER:
        if earlier in names and later in names:
            op = "<" if or_equal else "<="
            what = "before" if or_equal else "not after"
            extra = " (end_date is exclusive: the first day without service)" if later == "end_date" else ""
            reasons.append(f"case when {typed[later]} {op} {typed[earlier]} then '{later}: ' || cast({typed[later]} as varchar) || "
                           f"' is {what} {earlier} ' || cast({typed[earlier]} as varchar) || '{extra}' end")
    if check_customers and "customer_id" in names:
        # orders, subscriptions ... must belong to a customer this load knows (the last reason)
        cid = typed["customer_id"]
        reasons.append(
            f"case when {cid} is not null and {cid} not in (select customer_id from raw.customers "
            f"where customer_id is not null) then 'customer_id: ''' || left({cid}, 40) || case when {cid} in "
            "(select json_extract_string(raw_record, '$.customer_id') from raw.quarantine where table_name = 'customers') "
            "then ''' was quarantined in customers' else ''' is not in customers' end end")
    raw_struct = "struct_pack(" + ", ".join(f"{_q(n)} := src.{_q(n)}" for n in names) + ")"
    reason_list = f"list_filter(cast([{', '.join(reasons) or 'null'}] as varchar[]), lambda r: r is not null)"
    sql = (
        "select * exclude (_raw_struct), case when len(_reasons) > 0 then cast(to_json(_raw_struct) as varchar) end "
        f"as _raw from (select {', '.join(exprs)}, {_lit(version.path)} as _source_file, src._row_number, "
        f"timestamp {_lit(version.first_seen_at.isoformat(sep=' '))} as _loaded_at, "
        f"cast({int(version.load_seq)} as bigint) as _load_seq, {reason_list} as _reasons, "
        f"{raw_struct} as _raw_struct from {source} src)"
    )
    return sql, extras


# ----------------------------------------------------------------------------- loading a table


def _empty_table(con: duckdb.DuckDBPyConnection, table: Table) -> None:
    typed_cols = ", ".join(f"cast(null as {c.sql_type}) as {_q(c.name)}" for c in table.columns)
    lineage = ("cast(null as varchar) as _source_file, cast(null as bigint) as _row_number, "
               "cast(null as timestamp) as _loaded_at")
    con.execute(f"create or replace table raw.{table.name} as select {typed_cols}, {lineage} limit 0")


def _table_exists(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    return bool(con.execute(
        "select count(*) from information_schema.tables where table_schema = 'raw' and table_name = ?", [name]
    ).fetchone()[0])  # type: ignore[index]


def _digests(con: duckdb.DuckDBPyConnection, table_name: str, files: list[Path]) -> list[manifest.FileDigest]:
    """The files' checksums; a file whose size and modification time are those recorded for it
    in the manifest keeps its recorded checksum instead of being read again (hashing every landing
    file took ~15 s of each daily run at 100M interactions). A rewrite changes the modification
    time, so a changed file is always hashed."""
    known = manifest.recorded_digests(con, table_name)
    out = []
    for p in files:
        st = p.stat()
        rec = known.get(str(p))
        if rec is not None and rec.size == st.st_size and rec.modified_at == manifest.mtime(st):
            out.append(manifest.FileDigest(p, rec.sha256, rec.size, rec.modified_at, None))
        else:
            out.append(manifest.digest(p, text=p.suffix.lower() in CSV_SUFFIXES))
    return out


def load_table(
    con: duckdb.DuckDBPyConnection,
    landing_dir: Path,
    table_name: str,
    *,
    run_ts: datetime | None = None,
    future_tolerance_days: int = 1,
    max_money_value: float = 10_000_000.0,
) -> LoadResult:
    """Bring ``raw.<table_name>`` up to date with the landing folder, in one transaction.

    Three modes (``LoadResult.load_mode``):

    - ``unchanged``: the fingerprint (files, rules, run date and, for child tables, the customers
      it was checked against) is as stored, or only things that cannot change the table moved.
    - ``append``: the files loaded before are all still there with the same bytes, the rules are
      the same, and only new files arrived: only the new files are read, typed, quarantined and
      de-duplicated, and their rows are added. Anything an append cannot reproduce exactly (see
      :func:`_append_plan` and :class:`_Fallback`) falls back to a full rebuild.
    - ``full``: the table is rebuilt from every current file.

    Returns counts for the asset metadata.
    """
    table = TABLES[table_name]
    run_ts = run_ts or datetime.now(timezone.utc).replace(tzinfo=None)
    rules = _Rules(run_ts.date(), future_tolerance_days, max_money_value)
    files = find_files(landing_dir, table_name)
    if not files and table_name == "customers":
        raise IngestError(f"{landing_dir}: customers table missing; add customers.csv or customers.parquet")
    digests = _digests(con, table_name, files)

    con.execute("create schema if not exists raw")
    con.execute(QUARANTINE_DDL)
    con.execute(DUPLICATES_DDL)
    manifest.ensure_state_columns(con)
    cust_state = manifest.load_state(con, "customers") if table.references_customer else None
    depends = cust_state["fingerprint"] if cust_state else None
    rules_key = manifest.fingerprint({"loader": LOADER_VERSION, "table": table_name,
                                      "tolerance": future_tolerance_days, "max_money": max_money_value})

    def current_fp() -> str:
        if not files:
            # an absent optional table is empty whatever the run date, rules or customers: it stays
            # "unchanged" run after run (a new full_built_at each run made every dbt build a full one)
            return manifest.fingerprint({"loader": LOADER_VERSION, "table": table_name, "absent": True})
        return manifest.fingerprint({
            "loader": LOADER_VERSION, "table": table_name, "run_date": rules.run_date, "tolerance": future_tolerance_days,
            "max_money": max_money_value, "files": manifest.planned_versions(con, table_name, digests), "customers": depends,
        })

    state = manifest.load_state(con, table_name)
    if state is not None and current_fp() == state["fingerprint"] and _table_exists(con, table_name):
        if not files:
            return LoadResult(table_name, [], 0, 0, present=False, status="absent", load_mode="unchanged")
        if -1 not in [v[2] for v in manifest.planned_versions(con, table_name, digests)]:
            return _unchanged_result(con, table, [str(f) for f in files])

    common = {"rules": rules_key, "run_date": rules.run_date, "customers_fp": depends,
              "customers_gen": cust_state.get("generation") if cust_state else None}
    new_digests = _append_plan(con, table, digests, state, rules_key, rules, cust_state)
    if new_digests is not None:
        result = _try_append(con, table, files, digests, new_digests, run_ts, rules)
        if result is not None:
            manifest.save_state(con, table_name, current_fp(), run_ts, **common, generation=state["generation"],
                                mode=result.load_mode, full_built_at=state["full_built_at"],
                                conflicting_keys=result.conflicting_keys)
            return result

    # read every file first: a file that cannot be read stops the load before anything is written
    read: dict[str, tuple[str, list[str], dict[str, str]]] = {}
    try:
        _read_files(con, table, digests, read)
        con.execute("begin transaction")
        try:
            result = _load(con, table, files, digests, read, run_ts, rules)
            # the fingerprint is over the versions as now registered (new files now have a load_seq)
            manifest.save_state(con, table_name, current_fp(), run_ts, **common, generation=uuid.uuid4().hex,
                                mode="full", full_built_at=run_ts, conflicting_keys=result.conflicting_keys)
            pause_for_tests("ingest")
            con.execute("commit")
        except BaseException:
            con.execute("rollback")
            raise
    finally:
        for target, _, _ in read.values():
            con.execute(f"drop table if exists {target}")
    return result


def _read_files(con: duckdb.DuckDBPyConnection, table: Table, digests: list[manifest.FileDigest],
                read: dict[str, tuple[str, list[str], dict[str, str]]]) -> None:
    """Read each file into temp table _file_<i>, recording (table, columns, types) by path in ``read``
    as it goes, so the caller's cleanup drops what was read even when a later file fails."""
    for i, d in enumerate(digests):
        target = f"_file_{i}"
        names, types = _read_file(con, d.path, table, d, target)
        read[str(d.path)] = (target, names, types)


class _Fallback(Exception):
    """An append cannot give the same table as a full rebuild: roll it back and rebuild."""


def _append_plan(con: duckdb.DuckDBPyConnection, table: Table, digests: list[manifest.FileDigest], state: dict | None,
                 rules_key: str, rules: _Rules, cust_state: dict | None) -> list[manifest.FileDigest] | None:
    """The new files to append, or None when only a full rebuild gives the right table.

    An append is exact when every file loaded before is still there with the same bytes, the
    loading rules are the same, the run date did not go back (and, when it moved on, no row of the
    table was quarantined as a future event, which a later run date could let in), and for child
    tables the customers table only grew by appends since, without letting in (or re-labelling)
    a row this table quarantined for an unknown customer.
    """
    if not digests or state is None or state.get("generation") is None or not _table_exists(con, table.name):
        return None
    if state.get("rules") != rules_key or state.get("run_date") is None or rules.run_date < state["run_date"]:
        return None
    if rules.run_date != state["run_date"] and con.execute(
            "select count(*) from raw.quarantine where table_name = ? and reason like '%is after the run date%'",
            [table.name]).fetchone()[0]:  # type: ignore[index]
        return None
    by_path = {str(d.path): d for d in digests}
    current = manifest.current_files(con, table.name)
    if any(path not in by_path or by_path[path].sha256 != sha for path, sha in current.items()):
        return None  # a loaded file changed or disappeared
    if table.references_customer:
        if cust_state is None or cust_state.get("generation") != state.get("customers_gen"):
            return None  # customers was rebuilt in full since
        if cust_state["fingerprint"] != state.get("customers_fp") and _customer_quarantine_changes(con, table.name):
            return None
    return [d for d in digests if str(d.path) not in current]


def _customer_quarantine_changes(con: duckdb.DuckDBPyConnection, name: str) -> bool:
    """Would a row quarantined for its customer get a different verdict against today's customers?"""
    return bool(con.execute(
        "with q as (select nullif(trim(json_extract_string(raw_record, '$.customer_id')), '') as cid, "
        "  reason like '%was quarantined in customers%' as was_quarantined from raw.quarantine "
        "  where table_name = ? and (reason like '%is not in customers%' or reason like '%was quarantined in customers%')) "
        "select count(*) from q where cid in (select customer_id from raw.customers where customer_id is not null) "
        "or (cid in (select json_extract_string(raw_record, '$.customer_id') from raw.quarantine "
        "    where table_name = 'customers')) <> was_quarantined",
        [name],
    ).fetchone()[0])  # type: ignore[index]


def _try_append(con: duckdb.DuckDBPyConnection, table: Table, files: list[Path], digests: list[manifest.FileDigest],
                new_digests: list[manifest.FileDigest], run_ts: datetime, rules: _Rules) -> LoadResult | None:
    """Append the new files to ``raw.<table>``; None (nothing written) when only a full rebuild is exact."""
    name = table.name
    before = manifest.load_state(con, name)
    counted_before = before is not None and before.get("conflicting_keys") is not None
    read: dict[str, tuple[str, list[str], dict[str, str]]] = {}
    try:
        _read_files(con, table, new_digests, read)
        con.execute("begin transaction")
        try:
            reg = manifest.register(con, name, digests, run_ts)
            if reg.changed or reg.removed:  # pragma: no cover - _append_plan rules this out
                raise _Fallback("changed files")
            new_versions = [f for f in reg.files if f.change == "new"]
            appended = 0
            new_conflicts = 0
            if new_versions:
                all_extras = _incoming(con, table, new_versions, read, rules)
                existing = dict(con.execute(
                    "select column_name, data_type from information_schema.columns "
                    "where table_schema = 'raw' and table_name = ?", [name]).fetchall())
                incoming = dict(con.execute(
                    "select column_name, data_type from information_schema.columns "
                    "where table_name = '_incoming' and table_schema <> 'raw'").fetchall())
                if any(existing.get(c) != incoming.get(c) for c in all_extras):
                    raise _Fallback("new or retyped extra columns")  # a full load would widen every row
                pk = _q(table.primary_key)
                # (the incoming keys are the small side: the loaded table is probed, not hashed)
                if con.execute(
                        f"select count(*) from raw.{name} where {pk} in "
                        f"(select {pk} from _incoming where len(_reasons) = 0 and {pk} is not null)").fetchone()[0]:  # type: ignore[index]
                    raise _Fallback("keys already loaded")  # versions across old and new rows: rank them all
                _quarantine_and_rank(con, table, all_extras)
                # no new key was loaded before, so the conflicts are the old ones plus those among the new rows
                new_conflicts = _count_conflicts(con, "_kept", table.primary_key)
                cols = ", ".join(_q(c) for c in [*table.column_names, *all_extras])
                appended = int(con.execute("select count(*) from _kept").fetchone()[0])  # type: ignore[index]
                con.execute(
                    f"insert into raw.{name} by name select {cols}, _source_file, _row_number, _loaded_at "
                    "from _kept order by _load_seq, _row_number"
                )
                manifest.save_file_stats(con, name, _file_stats(con, [f.path for f in new_versions]))
                _drop_work_tables(con)
            pause_for_tests("ingest")
            con.execute("commit")
        except _Fallback:
            con.execute("rollback")
            _drop_work_tables(con)
            return None
        except BaseException:
            con.execute("rollback")
            raise
    finally:
        for target, _, _ in read.values():
            con.execute(f"drop table if exists {target}")
    result = _unchanged_result(con, table, [str(f) for f in files])
    if counted_before:  # else _unchanged_result counted the table, new rows included
        result.conflicting_keys += new_conflicts
    result.status = "loaded" if new_versions else "unchanged"
    result.load_mode = "append" if new_versions else "unchanged"
    result.rows_appended = appended
    result.new_files = [f.path for f in new_versions]
    result.identical_files = reg.identical
    return result


def _unchanged_result(con: duckdb.DuckDBPyConnection, table: Table, files: list[str]) -> LoadResult:
    stats = manifest.table_stats(con, table.name)
    reasons = dict(con.execute(
        "select split_part(reason, ':', 1), count(*) from raw.quarantine where table_name = ? group by 1 order by 1",
        [table.name],
    ).fetchall())
    extras = [r[0] for r in con.execute(
        "select column_name from information_schema.columns where table_schema = 'raw' and table_name = ? "
        "order by ordinal_position", [table.name]).fetchall()
        if r[0] not in table.column_names and r[0] not in LINEAGE_COLUMNS]
    n_kept = con.execute(f"select count(*) from raw.{table.name}").fetchone()[0]  # type: ignore[index]
    return LoadResult(
        table.name, files, rows_loaded=int(n_kept), rows_quarantined=stats["rows_quarantined"], present=True,
        extra_columns=extras, quarantine_reasons={str(k): int(v) for k, v in reasons.items()}, status="unchanged",
        rows_read=stats["rows_read"], rows_duplicate=stats["rows_duplicate"],
        conflicting_keys=count_conflicting_keys(con, table.name), load_mode="unchanged",
    )


def _incoming(con: duckdb.DuckDBPyConnection, table: Table, versions: list[manifest.FileVersion],
              read: dict[str, tuple[str, list[str], dict[str, str]]], rules: _Rules) -> list[str]:
    """Type the given file versions into temp table ``_incoming``; returns the extra columns in order."""
    parts, all_extras = [], []
    check_customers = table.references_customer and _table_exists(con, "customers")
    for version in versions:
        source, names, types = read[version.path]
        sql, extras = _typed_sql(table, names, types, rules, source, version, check_customers)
        parts.append(f"({sql})")
        all_extras.extend(e for e in extras if e not in all_extras)
    con.execute("drop table if exists _incoming")
    # one statement over every file: the typed rows are written once, not once per file and again as the union
    con.execute("create temp table _incoming as " + " union all by name ".join(parts))
    return all_extras


def _drop_work_tables(con: duckdb.DuckDBPyConnection) -> None:
    """Drop the temp tables (and view) a load works in: _incoming, _dup_keys, _ranked, _kept."""
    con.execute("drop view if exists _kept")
    for t in ("_ranked", "_dup_keys", "_incoming"):
        con.execute(f"drop table if exists {t}")


def _quarantine_and_rank(con: duckdb.DuckDBPyConnection, table: Table, all_extras: list[str]) -> None:
    """Quarantine the bad rows of ``_incoming``, rank the good ones into ``_ranked``, list the dropped
    ones, and define the view ``_kept``: the rows the table keeps."""
    name = table.name
    con.execute(
        "insert into raw.quarantine select ?, _source_file, _row_number, array_to_string(_reasons, '; '), _raw, _loaded_at "
        "from _incoming where len(_reasons) > 0",
        [name],
    )
    pk = _q(table.primary_key)
    has_updated = "updated_at" in table.column_names
    order_versions = ("updated_at desc nulls last, " if has_updated else "") + "_load_seq desc, _row_number desc"
    same_time = "and updated_at is not distinct from _win_updated" if has_updated else ""
    win_updated = "first_value(updated_at) over w as _win_updated," if has_updated else ""
    content = "struct_pack(" + ", ".join(f"{_q(c)} := {_q(c)}" for c in [*table.column_names, *all_extras]) + ")"
    # Only keys that occur more than once can have duplicates or versions: rank just their rows
    # (hashing and two windows over every row cost most of a large load); every other good row is kept.
    con.execute(f"create or replace temp table _dup_keys as select {pk} from _incoming where len(_reasons) = 0 "
                f"group by 1 having count(*) > 1")
    # identical rows: keep the latest copy; versions of a key: the latest by updated_at, then load order
    con.execute(f"""
        create or replace temp table _ranked as
        with good as (
            select * exclude (_reasons, _raw), md5(cast(to_json({content}) as varchar)) as _hash
            from _incoming semi join _dup_keys using ({pk}) where len(_reasons) = 0
        ),
        exact as (
            select *,
                row_number() over d as _dup_rank,
                first_value(_source_file) over d as _dup_file,
                first_value(_row_number) over d as _dup_row
            from good
            window d as (partition by {pk}, _hash order by _load_seq desc, _row_number desc)
        ),
        versions as (
            select *,
                row_number() over w as _ver_rank,
                first_value(_load_seq) over w as _win_seq,
                {win_updated}
                first_value(_source_file) over w as _win_file,
                first_value(_row_number) over w as _win_row
            from exact where _dup_rank = 1
            window w as (partition by {pk} order by {order_versions})
        )
        select *, (_ver_rank = 1 or (_load_seq = _win_seq {same_time})) as _keep from versions
        union all by name
        select *, false as _keep from exact where _dup_rank > 1
    """)
    con.execute(
        f"insert into raw.duplicates select ?, _source_file, _row_number, cast({pk} as varchar), "
        "case when _dup_rank > 1 then 'exact_duplicate' else 'older_version' end, "
        "case when _dup_rank > 1 then _dup_file else _win_file end, "
        "case when _dup_rank > 1 then _dup_row else _win_row end "
        "from _ranked where not _keep",
        [name],
    )
    # the rows the table keeps: every good row of a key seen once, and the kept rows of the ranked keys
    con.execute(f"""
        create or replace temp view _kept as
        select * exclude (_reasons, _raw) from _incoming anti join _dup_keys using ({pk}) where len(_reasons) = 0
        union all by name
        select * from _ranked where _keep
    """)


def _file_stats(con: duckdb.DuckDBPyConnection, paths: list[str]) -> dict[str, tuple[int, int, int, int]]:
    """Per file of ``_incoming``: (rows read, loaded, quarantined, duplicate); header-only files read no rows."""
    per_file = {
        r[0]: (int(r[1]), int(r[2]), int(r[3]), int(r[4]))
        for r in con.execute(
            "select i._source_file, count(*), count(*) filter (where len(i._reasons) = 0) - coalesce(max(d.n), 0), "
            "count(*) filter (where len(i._reasons) > 0), coalesce(max(d.n), 0) "
            "from _incoming i left join (select _source_file, count(*) as n from _ranked where not _keep group by 1) d "
            "using (_source_file) group by 1"
        ).fetchall()
    }
    for p in paths:
        per_file.setdefault(p, (0, 0, 0, 0))
    return per_file


def _load(con: duckdb.DuckDBPyConnection, table: Table, files: list[Path], digests: list[manifest.FileDigest],
          read: dict[str, tuple[str, list[str], dict[str, str]]], run_ts: datetime, rules: _Rules) -> LoadResult:
    name = table.name
    reg = manifest.register(con, name, digests, run_ts)
    con.execute("delete from raw.quarantine where table_name = ?", [name])
    con.execute("delete from raw.duplicates where table_name = ?", [name])
    if not files:
        _empty_table(con, table)
        return LoadResult(name, [], 0, 0, present=False, status="absent", removed_files=reg.removed, load_mode="full")

    all_extras = _incoming(con, table, reg.files, read, rules)
    _quarantine_and_rank(con, table, all_extras)
    contract_cols = ", ".join(_q(c) for c in table.column_names)
    extra_cols = "".join(f", {_q(c)}" for c in all_extras)
    con.execute(
        f"create or replace table raw.{name} as select {contract_cols}{extra_cols}, _source_file, _row_number, _loaded_at "
        "from _kept order by _load_seq, _row_number"
    )
    per_file = _file_stats(con, [f.path for f in reg.files])
    manifest.save_file_stats(con, name, per_file)
    reasons = dict(con.execute(
        "select split_part(r, ':', 1) as col, count(*) from (select unnest(_reasons) as r from _incoming) group by 1 order by 1"
    ).fetchall())
    n_read = sum(v[0] for v in per_file.values())
    n_bad = sum(v[2] for v in per_file.values())
    n_dup = sum(v[3] for v in per_file.values())
    n_kept = con.execute(f"select count(*) from raw.{name}").fetchone()[0]  # type: ignore[index]
    _drop_work_tables(con)
    if name == "customers" and n_read == 0:
        raise IngestError(f"{files[0]}: customers has a header but no data rows; deliver a non-empty customers file")
    if name == "customers" and n_kept == 0:
        raise IngestError(
            f"{files[0]}: every customers row was quarantined ({n_bad} rows); see raw.quarantine for the reasons"
        )
    return LoadResult(
        name,
        [f.path for f in reg.files],
        rows_loaded=int(n_kept),
        rows_quarantined=n_bad,
        present=True,
        extra_columns=all_extras,
        quarantine_reasons={str(k): int(v) for k, v in reasons.items()},
        rows_read=n_read,
        rows_duplicate=n_dup,
        conflicting_keys=_count_conflicts(con, f"raw.{name}", table.primary_key),
        new_files=reg.new,
        changed_files=reg.changed,
        removed_files=reg.removed,
        identical_files=reg.identical,
        load_mode="full",
        rows_appended=int(n_kept),
    )


# ----------------------------------------------------------------------------- reporting


def conflicting_keys(con: duckdb.DuckDBPyConnection, table_name: str, limit: int = 5) -> list[dict]:
    """Keys kept more than once in ``raw.<table>``: versions inside one file that nothing orders."""
    pk = _q(TABLES[table_name].primary_key)
    rows = con.execute(
        f"select cast({pk} as varchar), count(*), min(_source_file), list(_row_number order by _row_number) "
        f"from raw.{table_name} where {pk} is not null group by {pk} having count(*) > 1 order by 1 limit ?",
        [limit],
    ).fetchall()
    return [dict(zip(("key", "versions", "file", "rows"), r)) for r in rows]


def _count_conflicts(con: duckdb.DuckDBPyConnection, relation: str, primary_key: str) -> int:
    pk = _q(primary_key)
    return int(con.execute(
        f"select count(*) from (select {pk} from {relation} where {pk} is not null group by 1 having count(*) > 1)"
    ).fetchone()[0])  # type: ignore[index]


def count_conflicting_keys(con: duckdb.DuckDBPyConnection, table_name: str) -> int:
    """Keys kept more than once in ``raw.<table>``: as recorded by its last load (a full load counts
    them, an append adds those among its rows; see load_table), else counted in the table."""
    state = manifest.load_state(con, table_name)
    if state is not None and state.get("conflicting_keys") is not None:
        return int(state["conflicting_keys"])
    return _count_conflicts(con, f"raw.{table_name}", TABLES[table_name].primary_key)


def quarantine_sample(con: duckdb.DuckDBPyConnection, table_name: str, limit: int = 5) -> list[dict]:
    rows = con.execute(
        "select source_file, row_number, reason, raw_record from raw.quarantine where table_name = ? "
        "order by source_file, row_number limit ?",
        [table_name, limit],
    ).fetchall()
    return [dict(zip(("file", "row", "reason", "record"), r)) for r in rows]


def duplicates_sample(con: duckdb.DuckDBPyConnection, table_name: str, limit: int = 5) -> list[dict]:
    rows = con.execute(
        "select source_file, row_number, key_value, kind, kept_file, kept_row from raw.duplicates where table_name = ? "
        "order by source_file, row_number limit ?",
        [table_name, limit],
    ).fetchall()
    return [dict(zip(("file", "row", "key", "kind", "kept_file", "kept_row"), r)) for r in rows]


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
