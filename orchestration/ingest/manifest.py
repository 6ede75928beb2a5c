"""The landing manifest: every landing file version the warehouse has loaded, with its checksum.

``raw.landing_manifest`` has one row per (table, file path, version). A file seen for the first
time gets version 1; a file whose bytes changed under the same name gets the next version (the
old row is marked ``replaced``); a file that disappeared from the landing folder is marked
``removed``. ``load_seq`` orders file versions by when they were first loaded (files first seen in
the same run: by name), and is the "load order" the duplicate rule uses.

``raw.landing_state`` records, per raw table, a fingerprint of everything its contents depend on
(the current file versions, the loader rules and settings, the run date, and for child tables
the state of customers). When a run computes the same fingerprint the table is left untouched,
so ingesting the same files again changes nothing.

Plain functions over a DuckDB connection; they run inside the loader's transaction.
"""

from __future__ import annotations

import codecs
import hashlib
import json
import os
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

import duckdb

MANIFEST_DDL = """
create table if not exists raw.landing_manifest (
    table_name varchar not null,
    file_path varchar not null,
    version integer not null,
    sha256 varchar not null,
    size_bytes bigint,
    modified_at timestamp,
    load_seq bigint not null,
    first_seen_at timestamp not null,
    status varchar not null,            -- current | replaced | removed
    status_changed_at timestamp,
    rows_read bigint,
    rows_loaded bigint,
    rows_quarantined bigint,
    rows_duplicate bigint
)
"""
STATE_DDL = """
create table if not exists raw.landing_state (
    table_name varchar not null,
    fingerprint varchar not null,
    built_at timestamp not null
)
"""


@dataclass(frozen=True)
class FileDigest:
    path: Path
    sha256: str
    size: int
    modified_at: datetime
    # first encoding problem of a text file ("byte 0xfc on line 2"), None when it is valid UTF-8
    encoding_problem: str | None = None


@dataclass(frozen=True)
class FileVersion:
    path: str
    version: int
    sha256: str
    load_seq: int
    first_seen_at: datetime
    change: str  # new | changed | unchanged


@dataclass
class Registration:
    table: str
    files: list[FileVersion] = field(default_factory=list)  # current versions, in load order
    removed: list[str] = field(default_factory=list)
    identical: list[list[str]] = field(default_factory=list)  # groups of current files with equal bytes

    @property
    def new(self) -> list[str]:
        return [f.path for f in self.files if f.change == "new"]

    @property
    def changed(self) -> list[str]:
        return [f.path for f in self.files if f.change == "changed"]


def digest(path: Path, *, text: bool = False) -> FileDigest:
    """SHA-256, size and mtime of a file; for text files also the first invalid UTF-8 byte."""
    h = hashlib.sha256()
    problem = None
    decoder = codecs.getincrementaldecoder("utf-8")("strict") if text else None
    lines = 1
    with path.open("rb") as f:
        first = True
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
            if decoder is not None and problem is None:
                if first and chunk[:2] in (b"\xff\xfe", b"\xfe\xff"):
                    problem = "it is UTF-16 (byte-order mark FF FE)"
                else:
                    try:
                        decoder.decode(chunk)
                    except UnicodeDecodeError as exc:
                        bad = chunk[exc.start]
                        line = lines + chunk[: exc.start].count(b"\n")
                        problem = f"byte 0x{bad:02x} on line {line} is not UTF-8"
                lines += chunk.count(b"\n")
            first = False
        if decoder is not None and problem is None:
            try:
                decoder.decode(b"", final=True)
            except UnicodeDecodeError:
                problem = f"the file ends inside a multi-byte character (line {lines}) and is not valid UTF-8"
    st = path.stat()
    return FileDigest(path, h.hexdigest(), st.st_size, mtime(st), problem)


def mtime(st: os.stat_result) -> datetime:
    """A file's modification time as the manifest stores it (naive UTC, microseconds)."""
    return datetime.fromtimestamp(st.st_mtime, timezone.utc).replace(tzinfo=None)


def recorded_digests(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, FileDigest]:
    """The current files of ``table`` as recorded in the manifest (path -> checksum, size, mtime)."""
    try:
        rows = con.execute(
            "select file_path, sha256, size_bytes, modified_at from raw.landing_manifest "
            "where table_name = ? and status = 'current' and rows_read is not null",
            [table],
        ).fetchall()
    except duckdb.CatalogException:
        return {}
    return {r[0]: FileDigest(Path(r[0]), r[1], r[2], r[3], None) for r in rows}


def ensure_tables(con: duckdb.DuckDBPyConnection) -> None:
    con.execute("create schema if not exists raw")
    con.execute(MANIFEST_DDL)
    con.execute(STATE_DDL)


def register(con: duckdb.DuckDBPyConnection, table: str, digests: list[FileDigest], now: datetime) -> Registration:
    """Record the table's current landing files; return them as versions in load order."""
    ensure_tables(con)
    current = {
        r[0]: r[1:]
        for r in con.execute(
            "select file_path, version, sha256, load_seq, first_seen_at from raw.landing_manifest "
            "where table_name = ? and status = 'current'",
            [table],
        ).fetchall()
    }
    last_version = dict(con.execute(
        "select file_path, max(version) from raw.landing_manifest where table_name = ? group by 1", [table]
    ).fetchall())
    next_seq = (con.execute("select coalesce(max(load_seq), 0) from raw.landing_manifest").fetchone()[0]) + 1  # type: ignore[index]
    reg = Registration(table)
    seen = set()
    for d in sorted(digests, key=lambda d: str(d.path)):
        path = str(d.path)
        seen.add(path)
        old = current.get(path)
        if old is not None and old[1] == d.sha256:
            reg.files.append(FileVersion(path, old[0], d.sha256, old[2], old[3], "unchanged"))
            continue
        if old is not None:
            con.execute(
                "update raw.landing_manifest set status = 'replaced', status_changed_at = ? "
                "where table_name = ? and file_path = ? and status = 'current'",
                [now, table, path],
            )
        version = int(last_version.get(path) or 0) + 1
        con.execute(
            "insert into raw.landing_manifest (table_name, file_path, version, sha256, size_bytes, modified_at, "
            "load_seq, first_seen_at, status, status_changed_at) values (?, ?, ?, ?, ?, ?, ?, ?, 'current', ?)",
            [table, path, version, d.sha256, d.size, d.modified_at, next_seq, now, now],
        )
        reg.files.append(FileVersion(path, version, d.sha256, next_seq, now, "changed" if old is not None else "new"))
        next_seq += 1
    for path in sorted(set(current) - seen):
        con.execute(
            "update raw.landing_manifest set status = 'removed', status_changed_at = ? "
            "where table_name = ? and file_path = ? and status = 'current'",
            [now, table, path],
        )
        reg.removed.append(path)
    reg.files.sort(key=lambda f: f.load_seq)
    by_sha: dict[str, list[str]] = {}
    for f in reg.files:
        by_sha.setdefault(f.sha256, []).append(f.path)
    reg.identical = [paths for paths in by_sha.values() if len(paths) > 1]
    return reg


def planned_versions(con: duckdb.DuckDBPyConnection, table: str, digests: list[FileDigest]) -> list[tuple[str, str, int]]:
    """(path, sha256, load_seq or -1 for a version not loaded yet) without writing anything."""
    try:
        current = {
            r[0]: (r[1], r[2])
            for r in con.execute(
                "select file_path, sha256, load_seq from raw.landing_manifest where table_name = ? and status = 'current'",
                [table],
            ).fetchall()
        }
    except duckdb.CatalogException:
        current = {}
    out = []
    for d in sorted(digests, key=lambda d: str(d.path)):
        old = current.get(str(d.path))
        out.append((str(d.path), d.sha256, old[1] if old and old[0] == d.sha256 else -1))
    return out


def current_files(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, str]:
    """{path: sha256} of the table's file versions loaded so far (status current)."""
    try:
        return dict(con.execute(
            "select file_path, sha256 from raw.landing_manifest where table_name = ? and status = 'current'", [table]
        ).fetchall())
    except duckdb.CatalogException:
        return {}


# landing_state columns beyond (table_name, fingerprint, built_at), added in place to older warehouses:
# what an append needs to know about the last build of the table (see loader.load_table)
STATE_COLUMNS = {
    "rules": "varchar",            # fingerprint of the loading rules (loader version, tolerance, money ceiling)
    "run_date": "date",            # the run date the rows were checked against
    "customers_fp": "varchar",     # child tables: the customers state they were checked against
    "customers_gen": "varchar",    # child tables: the customers generation they were checked against
    "generation": "varchar",       # changes on every full rebuild, kept by appends
    "mode": "varchar",             # full | append | unchanged: what the last load did
    "full_built_at": "timestamp",  # when the table was last rebuilt in full (dbt: recompute everything after it)
    "conflicting_keys": "bigint",  # keys kept more than once (counted at a full load, added to by appends)
}


def ensure_state_columns(con: duckdb.DuckDBPyConnection) -> None:
    ensure_tables(con)
    for name, sql_type in STATE_COLUMNS.items():
        con.execute(f"alter table raw.landing_state add column if not exists {name} {sql_type}")


def load_state(con: duckdb.DuckDBPyConnection, table: str) -> dict | None:
    """The table's landing_state row as a dict (None when it was never built)."""
    try:
        cur = con.execute("select * from raw.landing_state where table_name = ?", [table])
    except duckdb.CatalogException:
        return None
    row = cur.fetchone()
    if row is None:
        return None
    return dict(zip([d[0] for d in cur.description], row))


def save_state(con: duckdb.DuckDBPyConnection, table: str, value: str, now: datetime, **fields) -> None:
    """Replace the table's landing_state row: fingerprint, build time and the STATE_COLUMNS given."""
    ensure_state_columns(con)
    unknown = set(fields) - set(STATE_COLUMNS)
    if unknown:
        raise ValueError(f"unknown landing_state columns {sorted(unknown)}")
    con.execute("delete from raw.landing_state where table_name = ?", [table])
    cols = ["table_name", "fingerprint", "built_at", *fields]
    con.execute(f"insert into raw.landing_state ({', '.join(cols)}) values ({', '.join('?' * len(cols))})",
                [table, value, now, *fields.values()])


def fingerprint(parts: dict) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def stored_fingerprint(con: duckdb.DuckDBPyConnection, table: str) -> str | None:
    try:
        row = con.execute("select fingerprint from raw.landing_state where table_name = ?", [table]).fetchone()
    except duckdb.CatalogException:
        return None
    return row[0] if row else None


def save_fingerprint(con: duckdb.DuckDBPyConnection, table: str, value: str, now: datetime) -> None:
    ensure_tables(con)
    con.execute("delete from raw.landing_state where table_name = ?", [table])
    con.execute("insert into raw.landing_state (table_name, fingerprint, built_at) values (?, ?, ?)", [table, value, now])


def save_file_stats(con: duckdb.DuckDBPyConnection, table: str, stats: dict[str, tuple[int, int, int, int]]) -> None:
    """Per current file: (rows read, loaded, quarantined, duplicate)."""
    for path, (read, loaded, quarantined, duplicate) in stats.items():
        con.execute(
            "update raw.landing_manifest set rows_read = ?, rows_loaded = ?, rows_quarantined = ?, rows_duplicate = ? "
            "where table_name = ? and file_path = ? and status = 'current'",
            [read, loaded, quarantined, duplicate, table, path],
        )


def table_stats(con: duckdb.DuckDBPyConnection, table: str) -> dict[str, int]:
    """Totals over the table's current files (what the last load of the table saw)."""
    try:
        row = con.execute(
            "select count(*), coalesce(sum(rows_read), 0), coalesce(sum(rows_loaded), 0), "
            "coalesce(sum(rows_quarantined), 0), coalesce(sum(rows_duplicate), 0) "
            "from raw.landing_manifest where table_name = ? and status = 'current'",
            [table],
        ).fetchone()
    except duckdb.CatalogException:
        row = (0, 0, 0, 0, 0)
    keys = ("files", "rows_read", "rows_loaded", "rows_quarantined", "rows_duplicate")
    return {k: int(v) for k, v in zip(keys, row)}  # type: ignore[arg-type]


def history(con: duckdb.DuckDBPyConnection, table: str | None = None) -> list[dict]:
    """Every file version the warehouse has seen (newest first)."""
    sql = ("select table_name, file_path, version, sha256, status, load_seq, first_seen_at, rows_read, rows_loaded, "
           "rows_quarantined, rows_duplicate from raw.landing_manifest")
    params: list = []
    if table:
        sql += " where table_name = ?"
        params.append(table)
    cols = ("table", "file", "version", "sha256", "status", "load_seq", "first_seen_at", "rows_read", "rows_loaded",
            "rows_quarantined", "rows_duplicate")
    return [dict(zip(cols, r)) for r in con.execute(sql + " order by load_seq desc", params).fetchall()]
