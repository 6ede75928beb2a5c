"""Browser checks: headless Debian Chromium driven by Playwright (never Playwright's own browser build).

`make test` installs Chromium first (scripts/ensure_chromium.sh). Without it, or without the
`playwright` package, these tests skip with the reason; with CI=true that is a failure instead.

One small pipeline run (synthetic, 300 customers) into a persistent Dagster instance is shared by
the report check and the UI check.
"""

from __future__ import annotations

import os
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from browser_helpers import CHROMIUM, CHROMIUM_ARGS, pipeline_env, run_pipeline, start_dagster_dev, stop_process_group


def _unavailable(reason: str):
    if os.environ.get("CI") == "true":
        pytest.fail(f"browser checks cannot run on CI: {reason}", pytrace=False)
    pytest.skip(reason)


@pytest.fixture(scope="session")
def chromium_executable() -> Path:
    """The Chromium binary; skips (fails when CI=true) when it or the Playwright driver is missing."""
    if not (CHROMIUM.exists() and os.access(CHROMIUM, os.X_OK)):
        _unavailable(f"{CHROMIUM} is missing: install Debian's chromium as root "
                     "(sh scripts/ensure_chromium.sh, which `make test` runs)")
    try:
        import playwright.sync_api  # noqa: F401
    except ImportError:
        _unavailable("the playwright package is not installed (pip install -c constraints.txt -e '.[test]')")
    return CHROMIUM


@pytest.fixture(scope="session")
def chromium(chromium_executable):
    """A headless Chromium (Playwright Browser); Playwright gives each launch a new, empty user-data-dir."""
    from playwright.sync_api import sync_playwright

    pw = sync_playwright().start()
    try:
        browser = pw.chromium.launch(executable_path=str(chromium_executable), headless=True, args=CHROMIUM_ARGS)
    except Exception as exc:  # noqa: BLE001
        pw.stop()
        _unavailable(f"{chromium_executable} did not start: {str(exc).splitlines()[0]}")
    try:
        yield browser
    finally:
        browser.close()
        pw.stop()


@dataclass
class MaterializedRun:
    dagster_home: Path
    data_dir: Path
    env: dict
    run_id: str
    seconds: float

    @property
    def report(self) -> Path:
        return self.data_dir / "published" / "report" / "index.html"


@pytest.fixture(scope="session")
def materialized_run(chromium_executable, tmp_path_factory) -> MaterializedRun:
    """One small synthetic run of the whole job, recorded in a persistent (SQLite) Dagster instance."""
    root = tmp_path_factory.mktemp("browser_run")
    env = pipeline_env(root / "dagster_home", root / "data", CHURN_SOURCE="synthetic",
                       CHURN_SYNTHETIC_CUSTOMERS="300", CHURN_SEED="7")
    started = time.time()
    run_id = run_pipeline(env)
    return MaterializedRun(root / "dagster_home", root / "data", env, run_id, time.time() - started)


@pytest.fixture(scope="session")
def dagster_ui(materialized_run, tmp_path_factory):
    """`dagster dev` against the instance of `materialized_run`; yields its base URL."""
    log = tmp_path_factory.mktemp("dagster_dev") / "dagster_dev.log"
    proc, base = start_dagster_dev(materialized_run.env, log)
    try:
        yield base
    finally:
        stop_process_group(proc)
