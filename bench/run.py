"""`make bench SIZE=10k`: generate synthetic data, run the pipeline cold, print and save figures.

Figures: each stage's wall time (from the Dagster event log), rows per second for ingest,
the pipeline's peak RSS, the *floor* (DuckDB scanning and aggregating the same raw event
data once by customer and month) and the transform stage's ratio to it. With results for
two sizes on file it also reports how time grows (the exponent of time ~ customers^k).

After the cold run it measures a **daily run**: the last day of the generated data is held back
from the cold run and delivered afterwards as one new file per table, and the pipeline runs again
(incremental ingest and dbt). Memory is sampled from /proc every 0.2 s over the whole process tree
(the pipeline and its dbt subprocess), so each stage's peak RSS is known, not only the run's.

A script, not a test: it asserts nothing. `tests/test_bench_smoke.py` only checks it runs.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
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


def hold_back_last_day(landing: Path, held: Path) -> tuple[date, dict[str, int]]:
    """Move the rows of the data's last day out of ``landing`` into ``held/<table>/day-<D>.parquet``.

    D is the latest interaction day; every table's rows dated D (customers by signup_date) move,
    so the cold run sees the data up to D-1 and the daily run gets one new file per table.
    """
    import duckdb

    con = duckdb.connect()
    day_expr = {"customers": "signup_date", **{t: f"cast({c} as date)" for t, c in EVENT_TABLES.items()}}
    last = con.execute(f"select max(cast(occurred_at as date)) from read_parquet('{landing}/interactions/*.parquet')"
                       ).fetchone()[0]
    moved: dict[str, int] = {}
    for table, expr in day_expr.items():
        files = sorted((landing / table).glob("*.parquet"))
        if not files:
            continue
        (held / table).mkdir(parents=True, exist_ok=True)
        glob = str(landing / table / "*.parquet")
        out = held / table / f"day-{last.isoformat()}.parquet"
        con.execute(f"copy (select * from read_parquet('{glob}') where {expr} = date '{last}') to '{out}' (format parquet)")
        moved[table] = con.execute(f"select count(*) from read_parquet('{out}')").fetchone()[0]
        for f in files:  # rewrite each part without that day (same columns and order)
            tmp = f.with_suffix(".tmp")
            con.execute(f"copy (select * from read_parquet('{f}') where {expr} is distinct from date '{last}') to '{tmp}' (format parquet)")
            tmp.replace(f)
    con.close()
    return last, moved


def deliver(held: Path, landing: Path) -> None:
    for f in held.glob("*/*.parquet"):
        shutil.copy2(f, landing / f.parent.name / f.name)


class RssSampler:
    """Samples the summed RSS of a process and all its descendants (Linux /proc) in a thread."""

    def __init__(self, pid: int, every: float = 0.2) -> None:
        import threading

        self.pid, self.every, self.samples = pid, every, []  # (epoch seconds, MB)
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _tree_rss_mb(self) -> float:
        children: dict[int, list[int]] = {}
        rss: dict[int, int] = {}
        for d in os.listdir("/proc"):
            if not d.isdigit():
                continue
            try:
                with open(f"/proc/{d}/stat") as fh:
                    fields = fh.read().rsplit(")", 1)[1].split()
                children.setdefault(int(fields[1]), []).append(int(d))
                rss[int(d)] = int(fields[21]) * os.sysconf("SC_PAGE_SIZE")
            except (OSError, IndexError, ValueError):
                continue
        total, todo = 0, [self.pid]
        while todo:
            p = todo.pop()
            total += rss.get(p, 0)
            todo.extend(children.get(p, []))
        return total / 2**20

    def _loop(self) -> None:
        while not self._stop.is_set():
            self.samples.append((time.time(), self._tree_rss_mb()))
            self._stop.wait(self.every)

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()

    def peak(self, start: float | None = None, end: float | None = None) -> float:
        vals = [mb for t, mb in self.samples if (start is None or t >= start) and (end is None or t <= end)]
        return round(max(vals), 1) if vals else 0.0


def run_pipeline(env: dict) -> tuple[subprocess.CompletedProcess, float, RssSampler]:
    t0 = time.perf_counter()
    proc = subprocess.Popen([sys.executable, "-m", "orchestration.run"], cwd=REPO, env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    sampler = RssSampler(proc.pid)
    out, err = proc.communicate()
    sampler.stop()
    return subprocess.CompletedProcess(proc.args, proc.returncode, out, err), time.perf_counter() - t0, sampler


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


def step_windows(dagster_home: Path) -> dict[str, tuple[float, float]]:
    """(start, end) epoch seconds of each step of the latest run, from the Dagster event log."""
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
                out[rec.step_key] = (starts[rec.step_key], rec.timestamp)
    return out


STAGES = ("ingest", "validate", "transform (dbt)", "train", "score", "publish")


def stage_of(step: str) -> str:
    if "gx_" in step or step.endswith("_batch_quality"):
        return "validate"
    if step.startswith(("landing", "raw__")):
        return "ingest"
    if step == "churn_dbt_models":
        return "transform (dbt)"
    if step == "churn_model" or "model" in step and "gate" in step:
        return "train"
    if step in ("customer_churn_scores", "churn_risk_by_segment") or step.endswith("_psi"):
        return "score"
    return "publish"


def group(windows: dict[str, tuple[float, float]], sampler: RssSampler | None = None) -> tuple[dict, dict]:
    """Seconds and peak RSS (MB, whole process tree) per stage; steps run one after another."""
    secs = {k: 0.0 for k in STAGES}
    peak = {k: 0.0 for k in STAGES}
    for step, (start, end) in windows.items():
        stage = stage_of(step)
        secs[stage] += end - start
        if sampler is not None:
            peak[stage] = max(peak[stage], sampler.peak(start, end))
    return {k: round(v, 2) for k, v in secs.items()}, peak


def load_modes(dagster_home: Path) -> dict[str, str]:
    """load_mode of each raw table in the latest run (full / append / unchanged)."""
    import dagster as dg

    os.environ["DAGSTER_HOME"] = str(dagster_home)
    out = {}
    with dg.DagsterInstance.get() as instance:
        run = instance.get_runs(limit=1)[0]
        for rec in instance.all_logs(run.run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION):
            mat = rec.dagster_event.event_specific_data.materialization
            if mat.asset_key.path[0] == "raw" and "load_mode" in mat.metadata:
                out[mat.asset_key.path[-1]] = mat.metadata["load_mode"].value
    return out


def code_version() -> str:
    """The commit measured (with +dirty when tracked files other than bench results have changes)."""
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=REPO, capture_output=True, text=True).stdout.strip()

    sha = git("rev-parse", "--short", "HEAD") or "unknown"
    # the results of an earlier size written today are not code
    changed = git("status", "--porcelain", "--untracked-files=no", "--", ".", ":(exclude)bench/results")
    return sha + ("+dirty" if changed else "")


def ingest_rate(stage: str, rows: int, secs: float) -> str:
    return f"{rows / secs:,.0f} rows/s, " if stage == "ingest" and secs else ""


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
    day, held_rows = hold_back_last_day(landing, work / "next_day")
    written = {t: v - held_rows.get(t, 0) for t, v in written.items()}
    floor_s, floor_rows = floor_seconds(landing)

    env = {**os.environ, "CHURN_SOURCE": "folder", "CHURN_LANDING_DIR": str(landing), "CHURN_DATA_DIR": str(data),
           "DAGSTER_HOME": str(home)}
    proc, total_s, sampler = run_pipeline(env)
    windows = step_windows(home) if proc.returncode == 0 else {}
    stages, stage_peaks = group(windows, sampler)
    steps = {k: round(e - s_, 2) for k, (s_, e) in windows.items()}
    dbt = dbt_profile(latest_run_id(home)) if home.exists() else {}
    sample = training_sample(data)
    raw_rows = sum(written.values())

    daily: dict = {}
    if proc.returncode == 0:
        deliver(work / "next_day", landing)
        dproc, daily_s, dsampler = run_pipeline(env)
        dwin = step_windows(home) if dproc.returncode == 0 else {}
        dstages, dpeaks = group(dwin, dsampler)
        daily = {"day": day.isoformat(), "rows": held_rows, "ok": dproc.returncode == 0,
                 "end_to_end_s": round(daily_s, 2), "stages_s": dstages, "stage_peak_rss_mb": dpeaks,
                 "peak_rss_mb": dsampler.peak(), "load_modes": load_modes(home) if dproc.returncode == 0 else {},
                 "dbt": dbt_profile(latest_run_id(home))}
        if dproc.returncode != 0:
            print("daily run failed:\n" + dproc.stderr[-3000:], file=sys.stderr)
    result = {
        "date": datetime.now(timezone.utc).isoformat(timespec="seconds"),
        "size": args.size, "customers": n, "months": args.months,
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "memory_gb": round(os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30, 1)},
        "rows": written, "generate_s": round(gen_s, 2),
        "pipeline_ok": proc.returncode == 0, "end_to_end_s": round(total_s, 2),
        "stages_s": stages, "stage_peak_rss_mb": stage_peaks, "steps_s": steps,
        "ingest_rows_per_s": round(raw_rows / stages["ingest"]) if stages["ingest"] else None,
        "peak_rss_mb": sampler.peak(),
        "floor_s": round(floor_s, 3), "floor_rows": floor_rows,
        "transform_to_floor": round(stages["transform (dbt)"] / floor_s, 1) if floor_s and stages["transform (dbt)"] else None,
        "dbt": dbt, "training_sample": sample, "daily": daily, "code_version": code_version(),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    stem = f"{date.today().isoformat()}-{args.size}"
    (args.out / f"{stem}.json").write_text(json.dumps(result, indent=2))
    md = [f"# Benchmark {args.size} customers ({result['date']})", "",
          f"Machine: {result['machine']['cpus']} CPUs, {result['machine']['memory_gb']} GB, "
          f"{result['machine']['platform']}; code {result['code_version']}", "",
          "| figure | value |", "|---|---|",
          f"| raw rows | {raw_rows:,} |", f"| generate | {gen_s:.1f} s |",
          f"| end to end (cold) | {total_s:.1f} s |",
          f"| peak RSS (pipeline + dbt, sampled) | {result['peak_rss_mb']:,.0f} MB |",
          f"| floor (DuckDB scan + aggregate) | {floor_s:.2f} s |",
          f"| transform / floor | {result['transform_to_floor']} |",
          f"| ingest rows/s | {result['ingest_rows_per_s']} |"]
    md += [f"| stage: {k} | {v:.1f} s, {ingest_rate(k, raw_rows, v)}peak {stage_peaks[k]:,.0f} MB |"
           for k, v in stages.items()]
    if dbt:
        md.append(f"| dbt elapsed (inside the transform stage) | {dbt['elapsed_s']:.1f} s |")
        md += [f"| dbt model: {k} | {v:.1f} s |" for k, v in dbt["models_s"].items()]
        md.append(f"| dbt tests (sum) | {dbt['tests_s']:.1f} s |")
    if sample:
        md.append(f"| training rows used / available | {sample.get('rows_used', 0):,} / {sample.get('rows_available', 0):,}"
                  + (" (stratified sample)" if sample.get("sampled") else "") + " |")
        if "training_seconds" in sample:
            md.append(f"| model training (train_model only) | {sample['training_seconds']:.1f} s |")
    if daily:
        md.append(f"| **daily run** (one new day, {daily['day']}: {sum(daily['rows'].values()):,} rows) | "
                  f"{daily['end_to_end_s']:.1f} s, peak {daily['peak_rss_mb']:,.0f} MB"
                  + ("" if daily["ok"] else " (FAILED)") + " |")
        md += [f"| daily stage: {k} | {v:.1f} s |" for k, v in daily["stages_s"].items()]
        if daily.get("load_modes"):
            md.append("| daily ingest load modes | " + ", ".join(f"{t} {m}" for t, m in sorted(daily["load_modes"].items()))
                      + " |")
        if daily.get("dbt"):
            md.append(f"| daily dbt elapsed | {daily['dbt']['elapsed_s']:.1f} s ("
                      + ", ".join(f"{k} {v:.1f}" for k, v in list(daily["dbt"]["models_s"].items())[:4]) + ") |")
    # growth: against the newest successful result of the nearest other size measured by the same code
    # (a figure from older code says nothing about how this code scales)
    same_code = [r for r in (json.loads(p.read_text()) for p in args.out.glob("*.json"))
                 if r.get("pipeline_ok") and r.get("code_version") == result["code_version"] and r["customers"] != n]
    if same_code:
        nearest = min({r["customers"] for r in same_code}, key=lambda c: (abs(math.log(c / n)), c))
        other = max((r for r in same_code if r["customers"] == nearest), key=lambda r: r["date"])
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
