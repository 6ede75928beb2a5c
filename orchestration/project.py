"""The one cached DbtProject and the paths the Dagster code shares."""

from __future__ import annotations

from functools import lru_cache
from pathlib import Path

from dagster_dbt import DbtProject

from orchestration.settings import REPO_ROOT

DBT_PROJECT_DIR = REPO_ROOT / "dbt_project"


@lru_cache(maxsize=1)
def dbt_project() -> DbtProject:
    project = DbtProject(project_dir=DBT_PROJECT_DIR, profiles_dir=DBT_PROJECT_DIR)
    # Parses only under `dagster dev`; `make run`/tests run `dbt parse` first (see Makefile),
    # so importing this module never shells out to dbt.
    project.prepare_if_dev()
    return project


def manifest_path() -> Path:
    return dbt_project().manifest_path
