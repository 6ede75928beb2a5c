"""A sensor on the landing folder: run the pipeline when files are added or changed (off by default).

Only for CHURN_SOURCE=folder (the other sources write their landing folder inside the run). The
cursor holds, per landing file, its size, mtime and SHA-256; a file whose size and mtime did not
change is not hashed again. A run is requested when the set of (file, checksum) differs from the
cursor's, once no file has been modified for CHURN_SENSOR_SETTLE_SECONDS (a copy in progress is
not loaded half-written). ``touch`` alone does not trigger a run; the run itself skips tables whose
files are unchanged (the landing manifest in the warehouse).

Turn it on in the UI (``make ui`` -> Automation) or with ``dagster sensor start landing_folder_sensor``.
"""

from __future__ import annotations

import hashlib
import json
import time
from pathlib import Path

import dagster as dg

from orchestration.ingest.contract import TABLES
from orchestration.ingest.loader import IngestError, find_files
from orchestration.ingest.manifest import digest
from orchestration.partitions import data_day_partitions, latest_partition_key
from orchestration.schedules import churn_pipeline_job
from orchestration.settings import get_settings


def scan(landing: Path, previous: dict[str, list]) -> dict[str, list]:
    """{relative path: [size, mtime_ns, sha256]} of the landing files, reusing unchanged hashes."""
    out: dict[str, list] = {}
    for t in TABLES:
        for p in find_files(landing, t):
            st = p.stat()
            rel = str(p.relative_to(landing))
            old = previous.get(rel)
            if old and old[0] == st.st_size and old[1] == st.st_mtime_ns:
                out[rel] = old
            else:
                out[rel] = [st.st_size, st.st_mtime_ns, digest(p).sha256]
    return out


def fingerprint(files: dict[str, list]) -> str:
    return hashlib.sha256(json.dumps(sorted((k, v[2]) for k, v in files.items())).encode()).hexdigest()


@dg.sensor(
    name="landing_folder_sensor",
    job=churn_pipeline_job,
    minimum_interval_seconds=get_settings().sensor_interval_seconds,
    default_status=dg.DefaultSensorStatus.STOPPED,
    description="Runs churn_pipeline when files in the landing folder (CHURN_SOURCE=folder) are new or changed.",
)
def landing_folder_sensor(context: dg.SensorEvaluationContext):
    settings = get_settings()
    if settings.source != "folder":
        return dg.SkipReason(f"CHURN_SOURCE={settings.source}: the sensor only watches a folder source's landing folder")
    landing = settings.resolved_landing_dir
    if not landing.is_dir():
        return dg.SkipReason(f"{landing} does not exist")
    cursor = json.loads(context.cursor) if context.cursor else {"files": {}, "fingerprint": None}
    try:
        files = scan(landing, cursor.get("files", {}))
    except (IngestError, OSError) as exc:
        # the run would fail on it; say so here and wait for the folder to change
        return dg.SkipReason(f"landing folder not loadable yet: {str(exc).splitlines()[0]}")
    if not files:
        return dg.SkipReason(f"{landing} has no landing files")
    newest = max(v[1] for v in files.values()) / 1e9
    if time.time() - newest < settings.sensor_settle_seconds:
        return dg.SkipReason(f"files changed less than {settings.sensor_settle_seconds}s ago; waiting for them to settle")
    fp = fingerprint(files)
    if fp == cursor.get("fingerprint"):
        context.update_cursor(json.dumps({"files": files, "fingerprint": fp}))
        return dg.SkipReason("no new or changed landing files")
    previous = cursor.get("files", {})
    changed = sorted(k for k, v in files.items() if k not in previous or previous[k][2] != v[2])
    context.update_cursor(json.dumps({"files": files, "fingerprint": fp}))
    # the newest data day: the run recomputes what the new files touch (orchestration/partitions.py)
    return dg.RunRequest(run_key=f"landing-{fp[:16]}", partition_key=latest_partition_key(data_day_partitions()),
                         tags={"churn/landing_changes": ", ".join(changed)[:200]})
