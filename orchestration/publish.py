"""Publish tables for BI tools: versioned Parquet + DuckDB sets, switched in with one atomic rename.

Layout of the published folder (``data/published``)::

    versions/<version>/   one complete set: <table>.parquet, churn.duckdb, manifest.json (immutable)
    current -> versions/<version>          the live set (a relative symlink)
    <table>.parquet -> current/<table>.parquet
    churn.duckdb    -> current/churn.duckdb
    manifest.json   -> current/manifest.json

A publish:
1. writes every output into a fresh ``.staging-*`` folder on the same filesystem, builds
   ``churn.duckdb`` with STORAGE_VERSION v1.4.0 (DuckDB 1.4 clients, which many BI drivers
   bundle, can open it) and ``manifest.json`` (run id, as-of date, per-file row counts and
   SHA-256), and fsyncs them;
2. renames the folder to ``versions/<version>`` (atomic);
3. points ``current`` at it by renaming a new symlink over the old one (atomic). This single
   rename is the switch: a reader, or a crash at any moment, sees the complete old set or the
   complete new one, never a mix;
4. keeps the newest ``keep_versions`` sets for :func:`rollback` and deletes older ones.

Targets. Step 1 stages the set once (:class:`StagedSet`: the suppressed, ordered tables as Parquet,
plus churn.duckdb and the manifest); every target then loads from it, so no target repeats a
SELECT or the suppression. The files target is steps 2-4. With ``postgres_url``
(CHURN_PUBLISH_POSTGRES_URL) the Postgres target (:class:`PostgresTarget`) COPYs the staged
Parquet files into a fresh ``<schema>__staging_<id>`` schema and swaps it in with one transaction
(rename live -> ``<schema>__old``, staging -> live, drop old), under an advisory lock. Order:
every target is prepared (Postgres loaded, files renamed into ``versions/``) before any is
switched; then Postgres switches, then the files. A failure before a target's switch discards
what it prepared and leaves its live set as it was; a Postgres failure therefore leaves both the
schema and the files as they were. If the files switch fails after the Postgres switch (a local
symlink rename, so unlikely: a full or read-only disk), Postgres serves the new version and the
files the previous one until the next successful publish; the error says so. :func:`rollback`
moves the files only; the Postgres schema keeps the last published set.

Readers open ``published/<table>.parquet`` or ``published/churn.duckdb`` (read_only) as before.
A reader that needs several files of one set reads ``manifest.json`` and then the files under
``versions/<manifest.version>/``, which never change. The warehouse is never exposed; the
published DuckDB file is written once and never opened for writing again, so a BI tool holding
it open never blocks the pipeline and never sees a lock error.

Small segments are suppressed at publish (:data:`SUPPRESSION`): figures of segments with fewer
than ``min_segment_customers`` customers are nulled and ``is_suppressed`` = 1; the warehouse
keeps the exact values.

``python -m orchestration.publish list | verify | rollback [VERSION]`` works on the configured
published folder.
"""

from __future__ import annotations

import errno
import fcntl
import hashlib
import json
import os
import re
import shutil
import sys
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb

from orchestration.settings import pause_for_tests

# DuckDB 1.4 clients cannot open files written with a newer storage format.
BI_STORAGE_VERSION = "v1.4.0"
PUBLISHED_DB = "churn.duckdb"
MANIFEST = "manifest.json"
VERSIONS = "versions"
CURRENT = "current"
LOCK_FILE = ".publish.lock"
HISTORY = "history.jsonl"
INFO_TABLE = "publish_info"
_IDENT = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_RELATION = re.compile(r"^[a-z_][a-z0-9_]{0,62}(\.[a-z_][a-z0-9_]{0,62}){0,2}$")
_VERSION_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,99}$")


class PublishError(RuntimeError):
    """Publishing or rolling back cannot proceed; the message says why and what to do."""


@dataclass(frozen=True)
class PublishedTable:
    name: str
    rows: int
    parquet: str
    sha256: str


@dataclass(frozen=True)
class Suppression:
    """How to find a segment's size and which columns identify it (never nulled)."""

    population: tuple[str, ...]  # columns summed (nulls as 0) = customers in the segment
    group_by: tuple[str, ...]  # segments that add up to a published total
    keys: tuple[str, ...]  # identifying columns, published as they are


# Customers in a segment-period = active at its start + new + reactivated + transient (everyone
# active at some point in the period); for the risk table, the active customers in the segment.
SUPPRESSION: dict[str, Suppression] = {
    "fct_churn_segment_period": Suppression(
        population=("customers_start", "customers_new", "customers_reactivated", "customers_transient"),
        group_by=("period_start", "segment_dimension"),
        keys=("period_start", "period_end", "segment_dimension", "segment_value", "is_small_segment"),
    ),
    "churn_risk_by_segment": Suppression(
        population=("customers",),
        group_by=("segment_dimension",),
        keys=("segment_dimension", "segment_value"),
    ),
}


# ----------------------------------------------------------------------------- small helpers


def _sha256(path: Path) -> str:
    h = hashlib.sha256()
    with path.open("rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def _fsync(path: Path) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _q(name: str) -> str:
    return '"' + name.replace('"', '""') + '"'


def _sql_path(path: Path) -> str:
    return "'" + str(path).replace("'", "''") + "'"


def check_version_id(value: str) -> str:
    """A version id becomes a folder name: letters, digits, '_', '.', '-' only, no '..'."""
    if not _VERSION_ID.match(value) or ".." in value:
        raise PublishError(f"version {value!r} is not a valid version name (letters, digits, _ . - only)")
    return value


def is_transient(exc: BaseException) -> bool:
    """Errors worth retrying: a busy file or lock, not a bug or bad data."""
    if isinstance(exc, TimeoutError):
        return True
    if isinstance(exc, OSError) and exc.errno in (errno.EBUSY, errno.EAGAIN, errno.EINTR, errno.ETXTBSY,
                                                   errno.ESTALE, errno.ENFILE, errno.EMFILE):
        return True
    if isinstance(exc, duckdb.IOException):
        text = str(exc)
        return "Could not set lock" in text or "Conflicting lock" in text
    return False


@contextmanager
def publish_lock(out_dir: Path, timeout: float = 120.0) -> Iterator[None]:
    """One publisher (or rollback) at a time per published folder."""
    out_dir.mkdir(parents=True, exist_ok=True)
    fd = os.open(out_dir / LOCK_FILE, os.O_RDWR | os.O_CREAT, 0o644)
    deadline = time.monotonic() + timeout
    try:
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                break
            except BlockingIOError:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{out_dir}: another publish holds {LOCK_FILE} for over {timeout:.0f}s") from None
                time.sleep(0.2)
        yield
    finally:
        os.close(fd)  # closing releases the lock


# ----------------------------------------------------------------------------- layout


def versions_dir(out_dir: Path) -> Path:
    return out_dir / VERSIONS


def current_version(out_dir: Path) -> str | None:
    link = out_dir / CURRENT
    if not link.is_symlink():
        return None
    return Path(os.readlink(link)).name


def _check_current_is_a_link(out_dir: Path) -> None:
    link = out_dir / CURRENT
    if link.is_dir() and not link.is_symlink():
        # e.g. the published folder was copied without keeping symlinks (cp -r): a rename cannot
        # replace a folder, and deleting one that a reader may be using is not ours to do
        raise PublishError(f"{link} is a folder, not the symlink the publisher switches; move it away "
                           f"(e.g. mv {link} {link}.old) and run again")


def _switch(out_dir: Path, version: str) -> None:
    """Point ``current`` at ``versions/<version>`` with one atomic rename."""
    _check_current_is_a_link(out_dir)
    tmp = out_dir / f".link-{uuid.uuid4().hex[:12]}"
    os.symlink(f"{VERSIONS}/{version}", tmp)
    os.replace(tmp, out_dir / CURRENT)
    _fsync(out_dir)


def _link_names(out_dir: Path, names: list[str]) -> None:
    """Make ``out_dir/<name>`` a symlink to ``current/<name>`` (atomic per name)."""
    for name in names:
        path = out_dir / name
        if path.is_symlink() and os.readlink(path) == f"{CURRENT}/{name}":
            continue
        if path.is_dir() and not path.is_symlink():
            raise PublishError(f"{path} is a folder; move it away so the published file can take its place")
        tmp = out_dir / f".link-{uuid.uuid4().hex[:12]}"
        os.symlink(f"{CURRENT}/{name}", tmp)
        os.replace(tmp, path)


def _drop_dangling_links(out_dir: Path) -> None:
    for p in out_dir.iterdir():
        if p.is_symlink() and p.name != CURRENT and os.readlink(p).startswith(f"{CURRENT}/") and not p.exists():
            p.unlink()


def _cleanup(out_dir: Path) -> None:
    """Remove what an interrupted publish left behind (called under the lock)."""
    for p in out_dir.iterdir():
        if p.name.startswith(".staging-") and p.is_dir() and not p.is_symlink():
            shutil.rmtree(p, ignore_errors=True)
        elif p.name.startswith(".link-") and p.is_symlink():
            p.unlink()


def _set_names(manifest: dict) -> list[str]:
    return [t["parquet"] for t in manifest["tables"]] + [manifest["duckdb_file"], MANIFEST]


def _adopt_legacy(out_dir: Path) -> None:
    """Turn a set published as plain files (before versions existed) into a version.

    Every step keeps each top-level name pointing at identical bytes, so readers are unaffected.
    """
    legacy = out_dir / MANIFEST
    if legacy.is_symlink() or not legacy.is_file():
        return
    try:
        manifest = json.loads(legacy.read_text())
        names = _set_names(manifest)
    except (ValueError, KeyError, TypeError):
        return
    if not all((out_dir / n).is_file() and not (out_dir / n).is_symlink() for n in names):
        return
    run_id = str(manifest.get("run_id") or "legacy")
    version = _free_version(out_dir, re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)[:90] or "legacy")
    staging = out_dir / f".staging-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    for n in names:
        shutil.copy2(out_dir / n, staging / n)
        _fsync(staging / n)
    manifest["version"] = version
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
    _fsync(staging / MANIFEST)
    versions_dir(out_dir).mkdir(exist_ok=True)
    os.rename(staging, versions_dir(out_dir) / version)
    _fsync(versions_dir(out_dir))
    _switch(out_dir, version)
    _link_names(out_dir, names)


def _free_version(out_dir: Path, wanted: str) -> str:
    check_version_id(wanted)
    candidate, n = wanted, 1
    while (versions_dir(out_dir) / candidate).exists():
        n += 1
        candidate = f"{wanted}.{n}"
    return candidate


def list_versions(out_dir: Path) -> list[dict]:
    """Published versions, newest first: version, run_id, published_at, as_of_date, current."""
    live = current_version(out_dir)
    out = []
    root = versions_dir(out_dir)
    if not root.is_dir():
        return out
    for d in root.iterdir():
        m = d / MANIFEST
        if not d.is_dir() or not m.is_file():
            continue
        try:
            manifest = json.loads(m.read_text())
        except ValueError:
            continue
        out.append({"version": d.name, "run_id": manifest.get("run_id"), "published_at": manifest.get("published_at"),
                    "as_of_date": manifest.get("as_of_date"), "current": d.name == live})
    out.sort(key=lambda v: (str(v["published_at"]), v["version"]), reverse=True)
    return out


def _prune(out_dir: Path, keep: int) -> list[str]:
    versions = list_versions(out_dir)
    doomed = [v["version"] for v in versions[keep:] if not v["current"]]
    for v in doomed:
        shutil.rmtree(versions_dir(out_dir) / v, ignore_errors=True)
    root = versions_dir(out_dir)
    for d in root.iterdir():  # half-written leftovers without a manifest
        if d.is_dir() and not (d / MANIFEST).exists() and d.name != current_version(out_dir):
            shutil.rmtree(d, ignore_errors=True)
    return doomed


def _history(out_dir: Path, event: dict) -> None:
    with (out_dir / HISTORY).open("a") as f:
        f.write(json.dumps({"at": datetime.now(timezone.utc).isoformat(timespec="seconds"), **event}) + "\n")


def verify(folder: Path) -> list[str]:
    """Problems with one set (a version folder, or the published folder): files vs manifest."""
    m = folder / MANIFEST
    if not m.exists():
        return [f"{m} is missing"]
    manifest = json.loads(m.read_text())
    problems = []
    for t in manifest["tables"]:
        p = folder / t["parquet"]
        if not p.exists():
            problems.append(f"{p} is missing")
            continue
        if _sha256(p) != t["sha256"]:
            problems.append(f"{p}: checksum differs from the manifest")
            continue
        con = duckdb.connect()
        try:
            rows = con.execute("select count(*) from read_parquet(?)", [str(p)]).fetchone()[0]  # type: ignore[index]
        finally:
            con.close()
        if rows != t["rows"]:
            problems.append(f"{p}: {rows} rows, the manifest says {t['rows']}")
    db = folder / manifest["duckdb_file"]
    if not db.exists():
        problems.append(f"{db} is missing")
    elif _sha256(db) != manifest["duckdb_sha256"]:
        problems.append(f"{db}: checksum differs from the manifest")
    return problems


# ----------------------------------------------------------------------------- suppression


def _columns(con: duckdb.DuckDBPyConnection, relation: str) -> list[str]:
    return [r[0] for r in con.execute(f"describe select * from {relation}").fetchall()]


def suppressed_select(con: duckdb.DuckDBPyConnection, relation: str, rule: Suppression, k: int) -> str:
    """SELECT publishing ``relation`` with small segments' figures nulled and ``is_suppressed``.

    Primary: segments with fewer than ``k`` customers. Secondary: when exactly one segment of a
    group (e.g. one period x dimension) is suppressed, the next smallest is suppressed too, so
    the hidden figures cannot be recovered by subtracting the others from the published total.
    """
    cols = _columns(con, relation)
    present = [c for c in rule.population if c in cols]
    if not present:
        raise PublishError(f"{relation}: none of {rule.population} exists, so segment sizes are unknown")
    pop = " + ".join(f"coalesce({_q(c)}, 0)" for c in present)
    group = ", ".join(_q(c) for c in rule.group_by if c in cols) or "1"
    order = ", ".join(_q(c) for c in rule.keys if c in cols) or "1"
    figures = [c for c in cols if c not in rule.keys and c != "is_suppressed"]
    select = []
    for c in cols:
        if c == "is_suppressed":
            continue
        select.append(f"case when _suppressed then null else {_q(c)} end as {_q(c)}" if c in figures else _q(c))
    return f"""
        with base as (select *, {pop} as _pop, ({pop}) < {int(k)} as _primary from {relation}),
        ranked as (
            select *,
                count(*) filter (where _primary) over (partition by {group}) as _n_primary,
                count(*) over (partition by {group}) as _n_group,
                row_number() over (partition by {group}, _primary order by _pop, {order}) as _size_rank
            from base
        ),
        flagged as (
            select *, (_primary or (_n_primary = 1 and _n_group > 1 and not _primary and _size_rank = 1)) as _suppressed
            from ranked
        )
        select {', '.join(select)}, cast(_suppressed as integer) as is_suppressed from flagged
    """


# ----------------------------------------------------------------------------- publish


def publish(
    con: duckdb.DuckDBPyConnection,
    tables: dict[str, str],
    out_dir: Path,
    *,
    run_id: str,
    extra_manifest: dict | None = None,
    keep_versions: int = 3,
    min_segment_customers: int = 10,
    suppression: dict[str, Suppression] | None = None,
    postgres_url: str | None = None,
    postgres_schema: str = "churn",
) -> dict:
    """Publish ``{name: relation}`` from the warehouse connection as a new version in ``out_dir``
    (and, with ``postgres_url``, to the Postgres schema ``postgres_schema``).

    Returns the manifest. Raises before any switch if anything fails, leaving the live sets as they were.
    """
    rules = SUPPRESSION if suppression is None else suppression
    for name, relation in tables.items():
        if not _IDENT.match(name) or not _RELATION.match(relation):
            raise PublishError(f"published table {name!r} <- {relation!r}: names must be lower_snake_case identifiers")
    extra = dict(extra_manifest or {})
    postgres = None
    if postgres_url:
        postgres = PostgresTarget(postgres_url, postgres_schema)
        extra["postgres"] = {"schema": postgres.schema}
    with publish_lock(out_dir):
        _check_current_is_a_link(out_dir)  # before anything is written
        _cleanup(out_dir)
        _adopt_legacy(out_dir)
        staging = out_dir / f".staging-{uuid.uuid4().hex[:12]}"
        staging.mkdir()
        try:
            version = _free_version(out_dir, re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)[:90] or "run")
            # 1. stage once: the suppressed, ordered tables -> Parquet + churn.duckdb + manifest
            manifest = _write_set(con, tables, staging, run_id=run_id, version=version, extra=extra,
                                  rules=rules, k=min_segment_customers)
            staged = StagedSet(staging, manifest)
            # 2. every target loads the staged set, invisible to readers; files go last (a rename)
            targets: list[Target] = [*([postgres] if postgres else []), FilesTarget(out_dir, keep_versions)]
            _prepare_and_switch(targets, staged)
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        return manifest


@dataclass(frozen=True)
class StagedSet:
    """One complete set, staged once: ``folder`` holds every ``<table>.parquet`` (suppressed, in a
    fixed order), ``churn.duckdb`` and ``manifest.json``. Targets read it; none re-runs a SELECT."""

    folder: Path
    manifest: dict

    @property
    def version(self) -> str:
        return self.manifest["version"]

    @property
    def run_id(self) -> str:
        return self.manifest["run_id"]

    def parquet_files(self) -> dict[str, Path]:
        return {t["name"]: self.folder / t["parquet"] for t in self.manifest["tables"]}


class Target:
    """Where a staged set is published. ``prepare`` loads it without readers seeing it, ``switch``
    makes it live atomically, ``discard`` removes what ``prepare`` made (only before ``switch``)."""

    name = "target"

    def prepare(self, staged: StagedSet) -> None:
        raise NotImplementedError

    def switch(self) -> None:
        raise NotImplementedError

    def discard(self) -> None:
        raise NotImplementedError

    def after_switch(self) -> None:
        """Housekeeping once live (pruning, history); must not fail the publish."""


def _prepare_and_switch(targets: list[Target], staged: StagedSet) -> None:
    """Prepare every target, then switch them in order; a failure before a target's switch discards it."""
    prepared: list[Target] = []
    switched: list[Target] = []
    try:
        for t in targets:
            prepared.append(t)
            t.prepare(staged)
        for t in targets:
            t.switch()
            switched.append(t)
    except BaseException as exc:
        for t in reversed(prepared):
            if t not in switched:
                try:
                    t.discard()
                except Exception:  # noqa: BLE001 - the original error matters more
                    pass
        if switched:
            live = ", ".join(t.name for t in switched)
            stale = ", ".join(t.name for t in targets if t not in switched)
            first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
            raise PublishError(
                f"version {staged.version} is live in {live} but switching {stale} failed ({type(exc).__name__}: "
                f"{first}); {stale} still serve the previous version; publish again to bring them in line"
            ) from exc
        raise
    for t in targets:
        t.after_switch()


class FilesTarget(Target):
    """Parquet + churn.duckdb + manifest under ``versions/<version>``, made live by the ``current`` symlink."""

    name = "files"

    def __init__(self, out_dir: Path, keep_versions: int) -> None:
        self.out_dir = out_dir
        self.keep_versions = keep_versions
        self.version: str | None = None
        self.run_id: str | None = None
        self.manifest: dict | None = None
        self.switched = False

    def prepare(self, staged: StagedSet) -> None:
        pause_for_tests("publish_staged")  # everything staged, nothing live yet
        versions_dir(self.out_dir).mkdir(exist_ok=True)
        os.rename(staged.folder, versions_dir(self.out_dir) / staged.version)
        _fsync(versions_dir(self.out_dir))
        self.version, self.run_id, self.manifest = staged.version, staged.run_id, staged.manifest

    def switch(self) -> None:
        assert self.version is not None and self.manifest is not None
        _link_names(self.out_dir, _set_names(self.manifest))  # new names dangle until the switch
        _switch(self.out_dir, self.version)
        self.switched = True
        pause_for_tests("publish_switched")

    def discard(self) -> None:
        if self.version and not self.switched and current_version(self.out_dir) != self.version:
            shutil.rmtree(versions_dir(self.out_dir) / self.version, ignore_errors=True)
            _drop_dangling_links(self.out_dir)

    def after_switch(self) -> None:
        _drop_dangling_links(self.out_dir)
        pruned = _prune(self.out_dir, self.keep_versions)
        _history(self.out_dir, {"event": "publish", "version": self.version, "run_id": self.run_id, "pruned": pruned})


def _write_set(con: duckdb.DuckDBPyConnection, tables: dict[str, str], staging: Path, *, run_id: str, version: str,
               extra: dict, rules: dict[str, Suppression], k: int) -> dict:
    published: list[PublishedTable] = []
    suppressed: dict[str, int] = {}
    db_path = staging / PUBLISHED_DB
    published_at = datetime.now(timezone.utc).isoformat(timespec="microseconds")
    con.execute(f"attach {_sql_path(db_path)} as _pub (storage_version '{BI_STORAGE_VERSION}')")
    try:
        for name, relation in tables.items():
            select = suppressed_select(con, relation, rules[name], k) if name in rules else f"select * from {relation}"
            # a fixed row order makes the files reproducible: same data, same bytes
            con.execute(f"create table _pub.main.{name} as select * from ({select}) order by all")
            pq = staging / f"{name}.parquet"
            con.execute(f"copy (select * from _pub.main.{name}) to {_sql_path(pq)} (format parquet, compression zstd)")
            rows = con.execute(f"select count(*) from _pub.main.{name}").fetchone()[0]  # type: ignore[index]
            if name in rules:
                suppressed[name] = int(con.execute(
                    f"select count(*) from _pub.main.{name} where is_suppressed = 1").fetchone()[0])  # type: ignore[index]
            published.append(PublishedTable(name, int(rows), pq.name, _sha256(pq)))
        con.execute(
            f"create table _pub.main.{INFO_TABLE} as select ? as run_id, ? as version, ? as published_at, ? as as_of_date",
            [run_id, version, published_at, str(extra.get("as_of_date"))],
        )
    finally:
        con.execute("detach _pub")
    for leftover in staging.glob("*.wal"):
        raise PublishError(f"{leftover}: the published DuckDB file was not checkpointed; not publishing")
    manifest = {
        "run_id": run_id,
        "version": version,
        "published_at": published_at,
        "storage_version": BI_STORAGE_VERSION,
        "duckdb_file": PUBLISHED_DB,
        "duckdb_sha256": _sha256(db_path),
        "tables": [t.__dict__ for t in published],
        "suppression": {"min_segment_customers": k, "rows_suppressed": suppressed},
        **extra,
    }
    (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
    for p in staging.iterdir():
        _fsync(p)
    _fsync(staging)
    return manifest


# ----------------------------------------------------------------------------- Postgres target

PG_PUBLISHER_WAIT_S = 120.0  # waiting for another publisher of the same schema (advisory lock)
PG_SWITCH_LOCK_TIMEOUT_S = 60  # waiting for readers' locks on the old tables during the swap
PG_COPY_BATCH = 10_000

_PG_TYPES = {
    "BOOLEAN": "boolean",
    "TINYINT": "smallint", "UTINYINT": "smallint", "SMALLINT": "smallint",
    "USMALLINT": "integer", "INTEGER": "integer",
    "UINTEGER": "bigint", "BIGINT": "bigint",
    "UBIGINT": "numeric(20,0)", "HUGEINT": "numeric(39,0)", "UHUGEINT": "numeric(39,0)",
    "FLOAT": "real", "DOUBLE": "double precision",
    "VARCHAR": "text",
    "DATE": "date", "TIME": "time",
    "TIMESTAMP": "timestamp", "TIMESTAMP_S": "timestamp", "TIMESTAMP_MS": "timestamp", "TIMESTAMP_NS": "timestamp",
    "TIMESTAMP WITH TIME ZONE": "timestamptz",
    "INTERVAL": "interval", "UUID": "uuid", "BLOB": "bytea",
}
_DECIMAL = re.compile(r"^DECIMAL\((\d+),\s*(\d+)\)$")


def postgres_type(duckdb_type: str) -> str:
    """The Postgres column type for a DuckDB column type (as ``DESCRIBE`` prints it)."""
    t = duckdb_type.strip().upper()
    m = _DECIMAL.match(t)
    if m:
        return f"numeric({int(m[1])},{int(m[2])})"
    if t in _PG_TYPES:
        return _PG_TYPES[t]
    raise PublishError(f"DuckDB type {duckdb_type} has no Postgres equivalent here; publish it as a plain type "
                       "(integer, bigint, double, decimal, varchar, date, timestamp, boolean)")


def copy_table(cur, ddb: duckdb.DuckDBPyConnection, target: object, parquet: Path) -> int:
    """Stream one staged Parquet file into an existing Postgres table with ``COPY ... FROM STDIN``."""
    from psycopg import sql

    cols = [r[0] for r in ddb.execute("describe select * from read_parquet(?)", [str(parquet)]).fetchall()]
    statement = sql.SQL("copy {} ({}) from stdin").format(target, sql.SQL(", ").join(map(sql.Identifier, cols)))
    result = ddb.execute("select * from read_parquet(?)", [str(parquet)])
    rows = 0
    with cur.copy(statement) as copy:
        while batch := result.fetchmany(PG_COPY_BATCH):
            for row in batch:
                copy.write_row(row)
            rows += len(batch)
    return rows


class PostgresTarget(Target):
    """The same tables in a Postgres schema, replaced whole in one transaction.

    ``prepare`` takes an advisory lock (one publisher per schema), drops what a dead publisher
    left (``<schema>__staging_*``, ``<schema>__old``), then creates ``<schema>__staging_<id>`` and
    loads every staged Parquet file plus ``publish_info`` into it (committed, not yet visible
    under the live name). ``switch`` renames ``<schema>`` to ``<schema>__old``, the staging schema
    to ``<schema>`` and drops the old one, in one transaction: a reader sees the old set or the new
    one. The drop waits for readers' locks on the old tables (up to PG_SWITCH_LOCK_TIMEOUT_S),
    so a transaction that has read the old tables keeps reading them until it ends.
    """

    name = "postgres"

    def __init__(self, url: str, schema: str) -> None:
        from orchestration.settings import SettingsError, redact_url, validate_identifier

        try:
            validate_identifier(schema, "Postgres schema")
        except SettingsError as exc:
            raise PublishError(str(exc)) from None
        if len(schema) > 45:
            raise PublishError(f"Postgres schema {schema!r} is longer than 45 characters (a suffix is added while staging)")
        self.url, self.schema = url, schema
        self.where = f"postgres target ({redact_url(url)}, schema {schema})"
        self.staging = f"{schema}__staging_{uuid.uuid4().hex[:8]}"
        self.old = f"{schema}__old"
        self.conn = None
        self.identity: tuple | None = None  # (version, published_at) of the staged set
        self.switched = False

    # --- helpers ----------------------------------------------------------------------
    def _scrub(self, text: str) -> str:
        from urllib.parse import unquote, urlsplit

        try:
            password = urlsplit(self.url).password
        except ValueError:
            password = None
        for secret in {password, unquote(password or "")} - {None, ""}:
            text = text.replace(secret, "***")  # type: ignore[arg-type]
        return text.replace(self.url, self.where)

    def _fail(self, exc: BaseException, doing: str, fix: str) -> PublishError:
        first = (str(exc).strip().splitlines() or [type(exc).__name__])[0]
        return PublishError(self._scrub(f"{self.where}: {doing} failed ({type(exc).__name__}: {first}); {fix}"))

    def _lock_key(self) -> int:
        return int.from_bytes(hashlib.sha256(f"churn-publish:{self.schema}".encode()).digest()[:8], "big", signed=True)

    def _schema_exists(self, name: str) -> bool:
        return self.conn.execute("select 1 from pg_namespace where nspname = %s", [name]).fetchone() is not None

    def _connect(self):
        import psycopg

        return psycopg.connect(self.url, autocommit=True, connect_timeout=10, application_name="churn-publish")

    # --- protocol ---------------------------------------------------------------------
    def prepare(self, staged: StagedSet) -> None:
        from psycopg import sql

        self.identity = (staged.version, datetime.fromisoformat(staged.manifest["published_at"]))
        try:
            self.conn = self._connect()
        except Exception as exc:  # noqa: BLE001 - libpq parse errors are not all psycopg.Error
            raise self._fail(exc, "connecting", "check CHURN_PUBLISH_POSTGRES_URL (host, port, user, password, "
                             "database) and that the server accepts connections") from None
        conn = self.conn
        doing = "taking the publish lock"
        try:
            deadline = time.monotonic() + PG_PUBLISHER_WAIT_S
            while not conn.execute("select pg_try_advisory_lock(%s)", [self._lock_key()]).fetchone()[0]:
                if time.monotonic() > deadline:
                    raise TimeoutError(f"{self.where}: another publisher has held the lock for over "
                                       f"{PG_PUBLISHER_WAIT_S:.0f}s")
                time.sleep(0.2)
            doing = "removing leftovers of an interrupted publish"
            pattern = self.schema.replace("_", "\\_") + "\\_\\_staging\\_%"
            leftovers = [r[0] for r in conn.execute(
                "select nspname from pg_namespace where nspname like %s or nspname = %s", [pattern, self.old])]
            for name in leftovers:
                conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(name)))
            if self._schema_exists(self.schema) and conn.execute(
                    "select to_regclass(%s) is null", [f'"{self.schema}".{INFO_TABLE}']).fetchone()[0]:
                raise PublishError(f"{self.where}: schema {self.schema} exists but was not made by this publisher (no "
                                   f"{INFO_TABLE} table); set CHURN_PUBLISH_POSTGRES_SCHEMA to another schema or drop it")
            ddb = duckdb.connect()
            try:
                with conn.transaction(), conn.cursor() as cur:
                    conn.execute(sql.SQL("create schema {}").format(sql.Identifier(self.staging)))
                    for name, parquet in staged.parquet_files().items():
                        doing = f"loading table {name}"
                        described = ddb.execute("describe select * from read_parquet(?)", [str(parquet)]).fetchall()
                        columns = [sql.SQL("{} {}").format(sql.Identifier(c[0]), sql.SQL(postgres_type(c[1])))
                                   for c in described]
                        target = sql.Identifier(self.staging, name)
                        conn.execute(sql.SQL("create table {} ({})").format(target, sql.SQL(", ").join(columns)))
                        rows = copy_table(cur, ddb, target, parquet)
                        expected = next(t["rows"] for t in staged.manifest["tables"] if t["name"] == name)
                        if rows != expected:
                            raise PublishError(f"{rows} rows copied, the manifest says {expected}")
                    doing = f"writing {INFO_TABLE}"
                    info = sql.Identifier(self.staging, INFO_TABLE)
                    conn.execute(sql.SQL("create table {} (run_id text not null, version text not null, "
                                         "published_at timestamptz not null, as_of_date date)").format(info))
                    conn.execute(sql.SQL("insert into {} values (%s, %s, %s, %s)").format(info),
                                 [staged.run_id, staged.version, datetime.fromisoformat(staged.manifest["published_at"]),
                                  _iso_date(staged.manifest.get("as_of_date"))])
            finally:
                ddb.close()
        except TimeoutError:
            raise
        except PublishError as exc:
            if str(exc).startswith(self.where):
                raise
            raise self._fail(exc, doing, "the live schema was left as it was") from exc
        except Exception as exc:  # noqa: BLE001 - psycopg, DuckDB or a bug: one line naming the target
            raise self._fail(exc, doing, "the live schema was left as it was; fix the cause and publish again") from exc

    def switch(self) -> None:
        import psycopg
        from psycopg import sql

        assert self.conn is not None
        conn = self.conn
        try:
            with conn.transaction():
                conn.execute(sql.SQL("set local lock_timeout = {}").format(sql.Literal(f"{PG_SWITCH_LOCK_TIMEOUT_S}s")))
                live = self._schema_exists(self.schema)
                if live:
                    conn.execute(sql.SQL("alter schema {} rename to {}").format(sql.Identifier(self.schema),
                                                                                sql.Identifier(self.old)))
                conn.execute(sql.SQL("alter schema {} rename to {}").format(sql.Identifier(self.staging),
                                                                            sql.Identifier(self.schema)))
                if live:
                    conn.execute(sql.SQL("drop schema {} cascade").format(sql.Identifier(self.old)))
        except psycopg.errors.LockNotAvailable:
            raise TimeoutError(f"{self.where}: readers held the old tables for over {PG_SWITCH_LOCK_TIMEOUT_S}s; "
                               "the live schema was left as it was") from None
        except psycopg.Error as exc:
            # a connection lost during COMMIT leaves the outcome unknown: ask the server
            if not self._live_is_staged():
                raise self._fail(exc, "switching", "the live schema was left as it was; publish again") from exc
        self.switched = True
        self._close()

    def _live_is_staged(self) -> bool:
        """True when the live schema's publish_info is this publish's (checked on a new connection)."""
        from psycopg import sql

        try:
            with self._connect() as conn:
                row = conn.execute(sql.SQL("select version, published_at from {}").format(
                    sql.Identifier(self.schema, INFO_TABLE))).fetchone()
            return row is not None and row == self.identity
        except Exception:  # noqa: BLE001 - unknown counts as not switched
            return False

    def discard(self) -> None:
        from psycopg import sql

        if self.switched:
            return
        try:
            if self.conn is None or self.conn.closed or self.conn.broken:
                self._close()
                self.conn = self._connect()
            self.conn.execute(sql.SQL("drop schema if exists {} cascade").format(sql.Identifier(self.staging)))
        except Exception:  # noqa: BLE001 - best effort; the next publish drops leftovers under the lock
            pass
        finally:
            self._close()

    def _close(self) -> None:
        if self.conn is not None:
            try:
                self.conn.close()  # also releases the advisory lock
            finally:
                self.conn = None


def _iso_date(value: object):
    from datetime import date

    try:
        return date.fromisoformat(str(value)[:10]) if value not in (None, "", "None") else None
    except ValueError:
        return None


def rollback(out_dir: Path, to: str | None = None) -> dict:
    """Make an earlier version live again (default: the one published before the current one)."""
    with publish_lock(out_dir):
        versions = list_versions(out_dir)
        live = current_version(out_dir)
        if to is None:
            names = [v["version"] for v in versions]
            if live not in names or names.index(live) + 1 >= len(names):
                raise PublishError(f"{out_dir}: no version older than {live!r} to roll back to "
                                   f"(kept: {', '.join(names) or 'none'})")
            to = names[names.index(live) + 1]
        check_version_id(to)
        target = versions_dir(out_dir) / to
        if not (target / MANIFEST).is_file():
            raise PublishError(f"{out_dir}: version {to!r} is not kept (kept: {', '.join(v['version'] for v in versions)})")
        problems = verify(target)
        if problems:
            raise PublishError(f"version {to} is damaged, not rolling back: {problems[0]}")
        manifest = json.loads((target / MANIFEST).read_text())
        names = _set_names(manifest)
        _link_names(out_dir, names)
        _switch(out_dir, to)
        _drop_dangling_links(out_dir)
        _history(out_dir, {"event": "rollback", "version": to, "from": live})
        return manifest


def read_manifest(out_dir: Path) -> dict | None:
    path = out_dir / MANIFEST
    return json.loads(path.read_text()) if path.exists() else None


def main(argv: list[str] | None = None) -> int:
    """``python -m orchestration.publish list | verify | rollback [VERSION]``."""
    from orchestration.settings import SettingsError, get_settings

    args = list(sys.argv[1:] if argv is None else argv)
    try:
        settings = get_settings()
        settings.check_paths()
    except SettingsError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = settings.published_dir
    command = args[0] if args else "list"
    try:
        if command == "list":
            for v in list_versions(out):
                mark = "*" if v["current"] else " "
                print(f"{mark} {v['version']}  published {v['published_at']}  as-of {v['as_of_date']}")
            return 0
        if command == "verify":
            problems = verify(out)
            for p in problems:
                print(f"error: {p}", file=sys.stderr)
            if not problems:
                print(f"{out}: version {current_version(out)} matches its manifest")
            return 1 if problems else 0
        if command == "rollback":
            manifest = rollback(out, args[1] if len(args) > 1 else None)
            print(f"{out}: version {manifest['version']} (run {manifest['run_id']}, as-of {manifest.get('as_of_date')}) is live")
            return 0
    except (PublishError, OSError) as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    print("usage: python -m orchestration.publish list | verify | rollback [VERSION]", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
