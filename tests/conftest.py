"""Shared fixtures: an isolated data dir per test, settings re-read from the environment."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parent.parent
DBT_DIR = REPO / "dbt_project"

os.environ.setdefault("GX_ANALYTICS_ENABLED", "false")
os.environ.setdefault("DO_NOT_TRACK", "1")


def _ensure_manifest() -> None:
    # the Dagster code needs dbt's manifest; `make test` builds it, this covers a bare `pytest`
    if not (DBT_DIR / "target" / "manifest.json").exists():
        dbt = Path(sys.executable).with_name("dbt")
        subprocess.run([str(dbt), "parse", "--quiet", "--project-dir", str(DBT_DIR), "--profiles-dir", str(DBT_DIR)],
                       check=True)


_ensure_manifest()


@pytest.fixture
def pipeline_env(tmp_path, monkeypatch):
    """Point every setting at a temporary directory; yields a function to set more env vars."""
    from orchestration.settings import get_settings

    for key in list(os.environ):
        if key.startswith("CHURN_"):
            monkeypatch.delenv(key)
    monkeypatch.setenv("CHURN_DATA_DIR", str(tmp_path / "data"))
    get_settings.cache_clear()

    def configure(**env: str):
        for k, v in env.items():
            monkeypatch.setenv(k, v)
        get_settings.cache_clear()
        return get_settings()

    yield configure
    get_settings.cache_clear()
