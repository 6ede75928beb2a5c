"""`python -m orchestration.run` on bad input prints ONE line per problem (no traceback) and exits non-zero."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from pathlib import Path

from orchestration.settings import REPO_ROOT

CORPUS = Path(__file__).resolve().parents[1] / "data" / "bad_inputs"


def run_cli(tmp_path: Path, landing: Path, **env: str) -> subprocess.CompletedProcess:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("CHURN_")}
    return subprocess.run(
        [sys.executable, "-m", "orchestration.run"],
        cwd=REPO_ROOT, capture_output=True, text=True, timeout=600,
        env={**clean, "CHURN_SOURCE": "folder", "CHURN_LANDING_DIR": str(landing), "CHURN_DATA_DIR": str(tmp_path / "data"),
             "DAGSTER_HOME": str(tmp_path / "dagster_home"), **env},
    )


# progress lines `make run` prints to stderr while the job runs (orchestration/progress.py)
PROGRESS = re.compile(r"^\[\s*\d+s\] \S")


def problems(stderr: str) -> str:
    """stderr without the progress lines: what the run says went wrong."""
    return "".join(line for line in stderr.splitlines(keepends=True) if not PROGRESS.match(line))


def test_a_refused_file_is_one_line(tmp_path):
    landing = tmp_path / "landing"
    shutil.copytree(CORPUS / "missing_required_column", landing)
    proc = run_cli(tmp_path, landing)
    assert proc.returncode == 1 and proc.stdout == ""
    assert problems(proc.stderr) == (f"error: {landing / 'orders.csv'}: required column 'amount' is missing (found: order_id, "
                           "customer_id, order_date); rename or add it per the orders contract\n")
    assert not (tmp_path / "data" / "published").exists()


def test_too_much_quarantine_stops_the_run_with_one_line(tmp_path):
    landing = tmp_path / "landing"
    shutil.copytree(CORPUS / "quarantine_share_over_threshold", landing)
    proc = run_cli(tmp_path, landing)
    assert proc.returncode == 1 and proc.stdout == ""
    assert problems(proc.stderr) == (
        "error: check batch_quality on raw/orders failed: raw.orders: 2 of 20 rows (10.0%) quarantined, above the 5% "
        "limit (CHURN_QUARANTINE_MAX_SHARE); by column: amount (1), order_date (1); fix the delivery (see "
        "raw.quarantine) and run again\n")
    assert not (tmp_path / "data" / "published").exists()


def test_a_bad_setting_is_one_line(tmp_path):
    proc = run_cli(tmp_path, tmp_path, CHURN_SEGMENT_DIMENSIONS='x"; drop table raw.customers; --')
    assert proc.returncode == 2 and proc.stdout == ""
    assert proc.stderr.count("\n") == 1 and "is not a safe identifier" in proc.stderr


def test_failure_lines_give_one_line_per_problem():
    from types import SimpleNamespace as NS

    import dagster as dg

    from orchestration.run import failure_lines, warning_lines

    def err(message, cause=None, cls="Exception"):
        return NS(message=message, cause=cause, cls_name=cls)

    dbt_message = ("The dbt CLI process with command\n\n`dbt build`\n\nfailed with exit code `1`.\n\n"
                   "Errors parsed from dbt logs:\n\n48 of 51 FAIL 605 assert_features_before_observation ... "
                   "[\x1b[31mFAIL 605\x1b[0m in 0.06s]\n\n\x1b[31mFailure in test assert_features_before_observation\x1b[0m\n"
                   "\n  Got 605 results, configured to fail if != 0\n\nStack Trace:\n  File \"x.py\"\n")
    events = [
        NS(event_type_value="STEP_FAILURE", step_key="raw__orders",
           event_specific_data=NS(error=err("dagster Failure"), user_failure_data=NS(description="orders.csv: bad\nmore"))),
        NS(event_type_value="STEP_FAILURE", step_key="churn_dbt_models",
           event_specific_data=NS(error=err("wrapper", err(dbt_message)), user_failure_data=None)),
        NS(event_type_value="STEP_FAILURE", step_key="raw__customers_gx_raw_customers",
           event_specific_data=NS(error=err("1 blocking check failed", cls="DagsterAssetCheckFailedError"),
                                  user_failure_data=None)),
        NS(event_type_value="ASSET_CHECK_EVALUATION", step_key="x",
           event_specific_data=NS(passed=False, check_name="gx_raw_customers", description="raw.customers: not unique",
                                  asset_key=NS(to_user_string=lambda: "raw/customers"))),
        NS(event_type_value="ASSET_CHECK_EVALUATION", step_key="x",
           event_specific_data=NS(passed=True, check_name="ok", description="fine", asset_key=None)),
        # a failed WARN-severity check (score drift) blocks nothing and the run publishes: a warning
        NS(event_type_value="ASSET_CHECK_EVALUATION", step_key="x",
           event_specific_data=NS(passed=False, check_name="score_drift_psi", description="PSI 0.41 > 0.25\nmore",
                                  severity=dg.AssetCheckSeverity.WARN,
                                  asset_key=NS(to_user_string=lambda: "customer_churn_scores"))),
    ]
    assert failure_lines(NS(all_events=events)) == [
        "orders.csv: bad",
        "step churn_dbt_models failed: dbt: 48 of 51 FAIL 605 assert_features_before_observation ... [FAIL 605 in 0.06s]; "
        "Failure in test assert_features_before_observation; Got 605 results, configured to fail if != 0",
        "check gx_raw_customers on raw/customers failed: raw.customers: not unique",
    ]
    assert warning_lines(NS(all_events=events)) == ["check score_drift_psi on customer_churn_scores warns: PSI 0.41 > 0.25"]
