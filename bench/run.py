"""`make bench SIZE=10k`: generate synthetic data, run the pipeline cold, print and save figures.

Figures: each stage's wall time (from the Dagster event log), rows per second for ingest,
the pipeline's peak RSS, the *floor* (DuckDB scanning and aggregating the same raw event
data once by customer and month) and the transform stage's ratio to it. With results for
two sizes on file it also reports how time grows (the exponent of time ~ customers^k).

A script, not a test: it asserts nothing. `tests/test_bench_smoke.py` only checks it runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from datetime import date, datetime, timezone
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
RESULTS = REPO / "bench" / "results"
EVENT_TABLES = {"orders": "order_date", "interactions": "occurred_at", "support_tickets": "opened_at",
                "loyalty_events": "occurred_at", "subscriptions": "start_date"}


def parse_size(text: str) -> int:
    t = text.lower().strip()
    mult = 1_000_000 if t.endswith("m") else 1_000 if t.endswith("k") else 1
    return int(float(t.rstrip("mk")) * mult)


def floor_seconds(landing: Path) -> tuple[float, int]:
    """DuckDB scanning every raw event table once, aggregated by customer and month."""
    import duckdb
    import pyarrow.parquet as pq

    con = duckdb.connect()
    elapsed, rows = 0.0, 0
    for table, col in EVENT_TABLES.items():
        files = sorted((landing / table).glob("*.parquet"))
        if not files:
            continue
        rows += sum(pq.ParquetFile(f).metadata.num_rows for f in files)
        glob = str(landing / table / "*.parquet")
        started = time.perf_counter()
        con.execute(f"select customer_id, date_trunc('month', {col}) as m, count(*) as n "
                    f"from read_parquet('{glob}') group by all").fetchall()
        elapsed += time.perf_counter() - started
    con.close()
    return elapsed, rows


def latest_run_id(dagster_home: Path) -> str | None:
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(dagster_home)
    with dg.DagsterInstance.get() as instance:
        runs = instance.get_runs(limit=1)
        return runs[0].run_id if runs else None


def dbt_profile(run_id: str | None, top: int = 8) -> dict:
    """dbt's own figures for the run: elapsed, per-model seconds (largest first), tests.

    dagster-dbt writes each invocation to dbt_project/target/churn_dbt_models-<run id[:7]>-*/.
    """
    if not run_id:
        return {}
    found = sorted((REPO / "dbt_project" / "target").glob(f"churn_dbt_models-{run_id[:7]}-*/run_results.json"))
    if not found:
        return {}
    res = json.loads(found[-1].read_text())
    nodes = [(r["unique_id"], float(r.get("execution_time") or 0)) for r in res.get("results", [])]
    models = sorted(((u.split(".")[-1], round(t, 2)) for u, t in nodes if not u.startswith("test.")), key=lambda x: -x[1])
    return {"elapsed_s": round(float(res.get("elapsed_time") or 0), 2),
            "models_s": dict(models[:top]),
            "tests_s": round(sum(t for u, t in nodes if u.startswith("test.")), 2),
            "nodes": len(nodes)}


def training_sample(data: Path) -> dict:
    """Rows the newest model trained on (from its registry metadata)."""
    metas = sorted((data / "models").glob("*/*/metadata.json"), key=lambda p: p.stat().st_mtime)
    if not metas:
        return {}
    meta = json.loads(metas[-1].read_text())
    ctx = meta.get("context", {})
    out = dict(ctx.get("training_sample") or {})
    if "training_seconds" in ctx:
        out["training_seconds"] = ctx["training_seconds"]
    return out


def stage_times(dagster_home: Path) -> dict[str, float]:
    """Seconds per step of the latest run, from the Dagster event log."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(dagster_home)
    with dg.DagsterInstance.get() as instance:
        run = instance.get_runs(limit=1)[0]
        starts, out = {}, {}
        for rec in instance.all_logs(run.run_id):
            ev = rec.dagster_event
            if ev is None or not rec.step_key:
                continue
            if ev.event_type_value == "STEP_START":
                starts[rec.step_key] = rec.timestamp
            elif ev.event_type_value in ("STEP_SUCCESS", "STEP_FAILURE") and rec.step_key in starts:
                out[rec.step_key] = round(rec.timestamp - starts[rec.step_key], 2)
    return out


def group(steps: dict[str, float]) -> dict[str, float]:
    stages = {"ingest": 0.0, "validate": 0.0, "transform (dbt)": 0.0, "train": 0.0, "score": 0.0, "publish": 0.0}
    for step, secs in steps.items():
        if "gx_" in step:
            stages["validate"] += secs
        elif step.startswith(("landing", "raw__")):
            stages["ingest"] += secs
        elif step == "churn_dbt_models":
            stages["transform (dbt)"] += secs
        elif step == "churn_model" or "model" in step and "gate" in step:
            stages["train"] += secs
        elif step in ("customer_churn_scores", "churn_risk_by_segment"):
            stages["score"] += secs
        else:
            stages["publish"] += secs
    return {k: round(v, 2) for k, v in stages.items()}


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--size", default="10k", help="customers: 10k, 100k, 1M")
    ap.add_argument("--months", type=int, default=36)
    ap.add_argument("--out", type=Path, default=RESULTS)
    ap.add_argument("--keep", action="store_true", help="keep the temporary data folder")
    args = ap.parse_args(argv)
    n = parse_size(args.size)
    work = Path(tempfile.mkdtemp(prefix=f"churn-bench-{args.size}-"))
    landing, data, home = work / "landing", work / "data", work / "dagster_home"
    home.mkdir(parents=True)
    from orchestration.ingest.sources import synthetic

    t0 = time.perf_counter()
    written = synthetic.write_landing(landing, n_customers=n, seed=1, start=date(2022, 1, 1), months=args.months)
    gen_s = time.perf_counter() - t0
    floor_s, floor_rows = floor_seconds(landing)

    env = {**os.environ, "CHURN_SOURCE": "folder", "CHURN_LANDING_DIR": str(landing), "CHURN_DATA_DIR": str(data),
           "DAGSTER_HOME": str(home)}
    t0 = time.perf_counter()
    proc = subprocess.run([sys.executable, "-m", "orchestration.run"], cwd=REPO, env=env, capture_output=True, text=True)
    total_s = time.perf_counter() - t0
    # ru_maxrss of children = the largest single descendant (the pipeline process or dbt), in KiB
    peak_rss_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    steps = stage_times(home) if proc.returncode == 0 else {}
    stages = group(steps)
    dbt = dbt_profile(latest_run_id(home)) if home.exists() else {}
    sample = training_sample(data)
    raw_rows = sum(written.values())
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "size": args.size, "customers": n, "months": args.months,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version()},
        "rows": written, "generate_s": round(gen_s, 2),
        "pipeline_ok": proc.returncode == 0, "end_to_end_s": round(total_s, 2),
        "stages_s": stages, "steps_s": steps,
        "ingest_rows_per_s": round(raw_rows / stages["ingest"]) if stages["ingest"] else None,
        "peak_rss_mb": round(peak_rss_mb, 1),
        "floor_s": round(floor_s, 3), "floor_rows": floor_rows,
        "transform_to_floor": round(stages["transform (dbt)"] / floor_s, 1) if floor_s and stages["transform (dbt)"] else None,
        "dbt": dbt, "training_sample": sample,
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"{date.today().isoformat()}-{args.size}"
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2))
    md = [f"# Benchmark {args.size} customers ({result['date']})", "",
          f"Machine: {result['machine']['cpus']} CPUs, {result['machine']['platform']}", "",
          "| figure | value |", "|---|---|",
          f"| raw rows | {raw_rows:,} |", f"| generate | {gen_s:.1f} s |",
          f"| end to end (cold) | {total_s:.1f} s |", f"| peak RSS | {peak_rss_mb:,.0f} MB |",
          f"| floor (DuckDB scan + aggregate) | {floor_s:.2f} s |",
          f"| transform / floor | {result['transform_to_floor']} |",
          f"| ingest rows/s | {result['ingest_rows_per_s']} |"]
    md += [f"| stage: {k} | {v:.1f} s |" for k, v in stages.items()]
    if dbt:
        md.append(f"| dbt elapsed (inside the transform stage) | {dbt['elapsed_s']:.1f} s |")
        md += [f"| dbt model: {k} | {v:.1f} s |" for k, v in dbt["models_s"].items()]
        md.append(f"| dbt tests (sum) | {dbt['tests_s']:.1f} s |")
    if sample:
        md.append(f"| training rows used / available | {sample.get('rows_used', 0):,} / {sample.get('rows_available', 0):,}"
                  + (" (stratified sample)" if sample.get("sampled") else "") + " |")
        if "training_seconds" in sample:
            md.append(f"| model training (train_model only) | {sample['training_seconds']:.1f} s |")
    sizes = sorted((json.loads(p.read_text()) for p in args.out.glob("*.json")), key=lambda r: r["customers"])
    ok = [r for r in sizes if r.get("pipeline_ok") and r["customers"] != n]
    if ok and n != ok[-1]["customers"]:
        other = ok[-1]
        k = math.log(total_s / other["end_to_end_s"]) / math.log(n / other["customers"])
        result["growth_exponent_vs"] = {"customers": other["customers"], "exponent": round(k, 2)}
        md.append(f"| time ~ customers^k, k vs {other['customers']:,} | {k:.2f} |")
        (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2))
    (args.out / f"{stem}.md").write_text("\n".join(md) + "\n")
    print("\n".join(md))
    if proc.returncode != 0:
        print("pipeline failed:\n" + proc.stderr[-3000:], file=sys.stderr)
    if not args.keep:
        shutil.rmtree(work, ignore_errors=True)
    return proc.returncode


if __name__ == "__main__":
    sys.exit(main())
