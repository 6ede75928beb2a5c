"""`make bench` at 10k customers runs end to end and writes its result files.

A smoke check only: benchmark figures depend on the machine, so none is asserted here; the
figures themselves live in bench/results/ and the README's Performance section.
"""

from __future__ import annotations

import json
import subprocess
import sys

from orchestration.settings import REPO_ROOT


def test_bench_10k_runs_and_writes_results(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "bench.run", "--size", "10k", "--out", str(tmp_path)],
                          cwd=REPO_ROOT, capture_output=True, text=True, timeout=1800)
    assert proc.returncode == 0, proc.stderr[-3000:]
    [result_file] = list(tmp_path.glob("*-10k.json"))
    result = json.loads(result_file.read_text())
    assert result["pipeline_ok"] is True and result["customers"] == 10_000
    assert set(result["stages_s"]) == {"ingest", "validate", "transform (dbt)", "train", "score", "publish"}
    assert (tmp_path / result_file.name.replace(".json", ".md")).exists()
