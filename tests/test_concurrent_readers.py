"""A BI reader in another process, reading in a loop while the pipeline publishes again and again.

It must never hit a lock error or see a partial table: every DuckDB read comes from one published
version (all its tables have that version's row counts), every Parquet read is byte-for-byte a
file some manifest lists, and a set read through manifest.json -> versions/<version>/ is complete.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path

import dagster as dg

from orchestration.assets.publish import published_churn_tables
from orchestration.resources import WarehouseResource

READER = r'''
import hashlib, io, json, sys, time
from pathlib import Path
import duckdb, pyarrow.parquet as pq

pub, stop, out = Path(sys.argv[1]), Path(sys.argv[2]), open(sys.argv[3], "w")
names = ["fct_churn_period", "fct_churn_segment_period", "fct_cohort_retention", "customer_churn_scores",
         "churn_risk_by_segment"]

def emit(**rec):
    out.write(json.dumps(rec) + "\n")

while not stop.exists():
    try:
        con = duckdb.connect(str(pub / "churn.duckdb"), read_only=True)
        try:
            version = con.execute("select version from publish_info").fetchone()[0]
            counts = {n: con.execute(f"select count(*) from {n}").fetchone()[0] for n in names}
        finally:
            con.close()
        emit(kind="duckdb", version=version, counts=counts)
    except Exception as exc:
        emit(kind="error", where="duckdb", error=f"{type(exc).__name__}: {exc}")
    for n in names:
        try:
            data = (pub / f"{n}.parquet").read_bytes()
            emit(kind="parquet", name=n, sha=hashlib.sha256(data).hexdigest(), rows=pq.read_table(io.BytesIO(data)).num_rows)
        except Exception as exc:
            emit(kind="error", where=n, error=f"{type(exc).__name__}: {exc}")
    try:
        manifest = json.loads((pub / "manifest.json").read_text())
        folder = pub / "versions" / manifest["version"]
        ok = all(hashlib.sha256((folder / t["parquet"]).read_bytes()).hexdigest() == t["sha256"] for t in manifest["tables"])
        ok = ok and hashlib.sha256((folder / "churn.duckdb").read_bytes()).hexdigest() == manifest["duckdb_sha256"]
        emit(kind="set", version=manifest["version"], ok=ok)
    except Exception as exc:
        emit(kind="error", where="set", error=f"{type(exc).__name__}: {exc}")
    out.flush()
out.close()
'''


def start_reader(tmp_path: Path, published: Path) -> tuple[subprocess.Popen, Path, Path]:
    script, stop, log = tmp_path / "reader.py", tmp_path / "reader.stop", tmp_path / "reads.jsonl"
    script.write_text(READER)
    proc = subprocess.Popen([sys.executable, str(script), str(published), str(stop), str(log)])
    deadline = time.time() + 60
    while time.time() < deadline and (not log.exists() or '"duckdb"' not in log.read_text()):
        time.sleep(0.2)
    return proc, stop, log


def stop_reader(proc: subprocess.Popen, stop: Path, log: Path) -> list[dict]:
    stop.touch()
    assert proc.wait(timeout=60) == 0
    return [json.loads(line) for line in log.read_text().splitlines()]


def check_reads(reads: list[dict], manifests: dict[str, dict]) -> dict[str, int]:
    """Every read matches some published manifest; returns counts of reads and versions seen."""
    errors = [r for r in reads if r["kind"] == "error"]
    assert errors == [], errors[:3]
    files = {(t["name"], t["sha256"], t["rows"]) for m in manifests.values() for t in m["tables"]}
    seen = set()
    for r in reads:
        if r["kind"] == "duckdb":
            m = manifests[r["version"]]
            assert r["counts"] == {t["name"]: t["rows"] for t in m["tables"]}, r
            seen.add(r["version"])
        elif r["kind"] == "parquet":
            assert (r["name"], r["sha"], r["rows"]) in files, r
        elif r["kind"] == "set":
            assert r["ok"] and r["version"] in manifests, r
    return {"reads": len(reads), "versions_seen": len(seen)}


def test_readers_never_see_a_lock_or_a_partial_set(pipeline_env, tmp_path):
    from test_publish import make_warehouse

    settings = pipeline_env(CHURN_SOURCE="synthetic")
    resources = {"warehouse": WarehouseResource(path=str(settings.warehouse_path))}
    manifests: dict[str, dict] = {}

    def publish_once(variant: int) -> None:
        make_warehouse(settings.warehouse_path, variant=variant)
        result = dg.materialize([published_churn_tables], resources=resources, instance=dg.DagsterInstance.ephemeral())
        assert result.success
        m = json.loads((settings.published_dir / "manifest.json").read_text())
        manifests[m["version"]] = m

    publish_once(0)
    proc, stop, log = start_reader(tmp_path, settings.published_dir)
    try:
        for variant in range(1, 7):
            publish_once(variant)
            time.sleep(0.3)
    finally:
        reads = stop_reader(proc, stop, log)
    stats = check_reads(reads, manifests)
    assert len(manifests) == 7
    # the reader really ran across publishes
    assert stats["versions_seen"] >= 3 and stats["reads"] >= 50, stats
    # versions differ in content, so a mixed read would have been caught
    assert len({m["tables"][2]["sha256"] for m in manifests.values()}) == 7
