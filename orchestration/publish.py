"""Publish tables for BI tools: Parquet files plus a separate DuckDB file, swapped in atomically.

Plain functions over a DuckDB connection (the assets are thin). The sequence is:
1. write every output into a fresh staging folder next to the published folder
   (same filesystem, so the final rename is atomic);
2. build ``churn.duckdb`` there with STORAGE_VERSION v1.4.0 so DuckDB 1.4 clients
   (which many BI drivers bundle) can open it;
3. checksum everything into ``manifest.json``;
4. ``os.replace`` each file into place, the manifest last. A reader sees either the old
   file or the new one, never a partial file; a crash before step 4 leaves the old set.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import uuid
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

import duckdb

# DuckDB 1.4 clients cannot open files written with a newer storage format.
BI_STORAGE_VERSION = "v1.4.0"
PUBLISHED_DB = "churn.duckdb"
MANIFEST = "manifest.json"


@dataclass(frozen=True)
class PublishedTable:
    name: str
    rows: int
    parquet: str
    sha256: str


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


def publish(
    con: duckdb.DuckDBPyConnection,
    tables: dict[str, str],
    out_dir: Path,
    *,
    run_id: str,
    extra_manifest: dict | None = None,
) -> dict:
    """Publish ``{name: relation}`` from the warehouse connection into ``out_dir``.

    Returns the manifest. Raises before touching ``out_dir`` if any step fails.
    """
    out_dir.mkdir(parents=True, exist_ok=True)
    staging = out_dir / f".staging-{uuid.uuid4().hex[:12]}"
    staging.mkdir()
    try:
        published: list[PublishedTable] = []
        db_path = staging / PUBLISHED_DB
        con.execute(f"attach '{db_path}' as _pub (storage_version '{BI_STORAGE_VERSION}')")
        try:
            for name, relation in tables.items():
                pq = staging / f"{name}.parquet"
                con.execute(f"copy (select * from {relation}) to '{pq}' (format parquet, compression zstd)")
                con.execute(f"create table _pub.main.{name} as select * from {relation}")
                rows = con.execute(f"select count(*) from _pub.main.{name}").fetchone()[0]  # type: ignore[index]
                published.append(PublishedTable(name, int(rows), pq.name, _sha256(pq)))
        finally:
            con.execute("detach _pub")
        manifest = {
            "run_id": run_id,
            "published_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "storage_version": BI_STORAGE_VERSION,
            "duckdb_file": PUBLISHED_DB,
            "duckdb_sha256": _sha256(db_path),
            "tables": [t.__dict__ for t in published],
            **(extra_manifest or {}),
        }
        (staging / MANIFEST).write_text(json.dumps(manifest, indent=2, default=str))
        for p in staging.iterdir():
            _fsync(p)
        # swap: data files first, the manifest last, so a manifest never points at missing files
        for p in sorted(staging.iterdir(), key=lambda p: p.name == MANIFEST):
            os.replace(p, out_dir / p.name)
        return manifest
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def read_manifest(out_dir: Path) -> dict | None:
    path = out_dir / MANIFEST
    return json.loads(path.read_text()) if path.exists() else None
