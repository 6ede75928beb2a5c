"""Terminal progress lines come from the run's own event log while the job runs."""

import io
import re

import dagster as dg

from orchestration.progress import run_with_progress, stage_totals


@dg.asset(key=["raw", "customers"])
def raw_customers(context: dg.AssetExecutionContext) -> dg.MaterializeResult:
    context.log.info("progress: ingest raw/customers: file customers.csv, 3 rows")
    context.log.info("not a progress line")
    return dg.MaterializeResult(metadata={"dagster/row_count": 3})


@dg.asset(key=["marts", "fct"], deps=[raw_customers])
def fct() -> dg.MaterializeResult:
    return dg.MaterializeResult(metadata={"dagster/row_count": 1234})


@dg.asset(key=["marts", "other"], deps=[fct])
def other() -> None:
    return None


@dg.asset_check(asset=fct)
def fct_is_fine() -> dg.AssetCheckResult:
    return dg.AssetCheckResult(passed=False, description="2 rows break the identity\nsecond line")


def test_progress_lines_follow_the_run():
    defs = dg.Definitions(assets=[raw_customers, fct, other], asset_checks=[fct_is_fine],
                          jobs=[dg.define_asset_job("j")])
    job = defs.resolve_job_def("j")
    instance = dg.DagsterInstance.ephemeral()
    out = io.StringIO()
    totals = stage_totals(job)
    assert totals == {"ingest": 1, "dbt": 2}  # raw -> ingest; marts -> dbt
    result = run_with_progress(lambda run_id: job.execute_in_process(instance=instance, run_id=run_id),
                               instance, "4f1d7c1e-0000-4000-8000-000000000001", totals, out, poll=0.05)
    assert result.success and result.run_id == "4f1d7c1e-0000-4000-8000-000000000001"
    lines = [re.sub(r"^\[\s*\d+s\] ", "", line) for line in out.getvalue().splitlines()]
    assert lines == [
        "ingest raw/customers: file customers.csv, 3 rows",
        "ingest     1/1  raw/customers, 3 rows",
        "dbt        1/2  marts/fct, 1,234 rows",
        "check   FAILED  fct_is_fine on marts/fct: 2 rows break the identity",
        "dbt        2/2  marts/other",
    ]


def test_an_error_in_the_run_is_raised_in_the_caller():
    instance = dg.DagsterInstance.ephemeral()

    def boom(run_id):
        raise RuntimeError("no")

    try:
        run_with_progress(boom, instance, "4f1d7c1e-0000-4000-8000-000000000002", {}, io.StringIO(), poll=0.01)
    except RuntimeError as exc:
        assert str(exc) == "no"
    else:
        raise AssertionError("the worker's error was swallowed")
