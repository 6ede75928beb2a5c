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


def _switch(out_dir: Path, version: str) -> None:
    """Point ``current`` at ``versions/<version>`` with one atomic rename."""
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
) -> dict:
    """Publish ``{name: relation}`` from the warehouse connection as a new version in ``out_dir``.

    Returns the manifest. Raises before the switch if anything fails, leaving the live set as it was.
    """
    rules = SUPPRESSION if suppression is None else suppression
    for name, relation in tables.items():
        if not _IDENT.match(name) or not _RELATION.match(relation):
            raise PublishError(f"published table {name!r} <- {relation!r}: names must be lower_snake_case identifiers")
    with publish_lock(out_dir):
        _cleanup(out_dir)
        _adopt_legacy(out_dir)
        staging = out_dir / f".staging-{uuid.uuid4().hex[:12]}"
        staging.mkdir()
        try:
            version = _free_version(out_dir, re.sub(r"[^A-Za-z0-9_.-]", "_", run_id)[:90] or "run")
            manifest = _write_set(con, tables, staging, run_id=run_id, version=version, extra=extra_manifest or {},
                                  rules=rules, k=min_segment_customers)
            pause_for_tests("publish_staged")
            versions_dir(out_dir).mkdir(exist_ok=True)
            os.rename(staging, versions_dir(out_dir) / version)
            _fsync(versions_dir(out_dir))
        finally:
            shutil.rmtree(staging, ignore_errors=True)
        names = _set_names(manifest)
        _link_names(out_dir, names)  # new names dangle until the switch; existing ones are unchanged
        _switch(out_dir, version)
        pause_for_tests("publish_switched")
        _drop_dangling_links(out_dir)
        pruned = _prune(out_dir, keep_versions)
        _history(out_dir, {"event": "publish", "version": version, "run_id": run_id, "pruned": pruned})
        return manifest


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
