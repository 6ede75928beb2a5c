"""Resources: the private DuckDB warehouse and the dbt CLI."""

from __future__ import annotations

import sys
from collections.abc import Iterator
from contextlib import contextmanager
from functools import cached_property
from importlib.metadata import version as installed_version
from pathlib import Path

import dagster as dg
import duckdb
from dagster_dbt import DbtCliResource
from packaging import version

from orchestration.project import DBT_PROJECT_DIR
from orchestration.settings import get_settings


class WarehouseResource(dg.ConfigurableResource):
    """The pipeline's private DuckDB file. Only this process (and dbt, in its own step)
    opens it; BI tools read the published copy instead, so they never hold its lock."""

    path: str = ""  # empty = the settings' warehouse path, read when a step runs

    def resolved_path(self) -> Path:
        return Path(self.path) if self.path else get_settings().warehouse_path

    @contextmanager
    def connect(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        path = self.resolved_path()
        path.parent.mkdir(parents=True, exist_ok=True)
        # bounded memory: DuckDB spills to <file>.tmp/ instead of growing to 80% of RAM (its default)
        con = duckdb.connect(str(path), read_only=read_only, config=get_settings().duckdb_config)
        try:
            yield con
        finally:
            # close before the next step: dbt runs in a subprocess and needs the write lock
            con.close()


class ChurnDbtCliResource(DbtCliResource):
    """dagster-dbt's dbt CLI resource, with the dbt version read from the installed dbt-core.

    dagster-dbt asks the executable (`dbt --version`, a second dbt start-up of ~2 s) on every run
    to choose between dbt-core and the Fusion engine. The executable here is always the dbt-core
    of this interpreter's environment (build_resources), so its package version is the answer.
    """

    @cached_property
    def _cli_version(self) -> version.Version:
        return version.parse(installed_version("dbt-core"))


def build_resources() -> dict[str, object]:
    return {
        "warehouse": WarehouseResource(),
        # the dbt next to this interpreter, so an un-activated .venv works
        "dbt": ChurnDbtCliResource(
            project_dir=str(DBT_PROJECT_DIR),
            profiles_dir=str(DBT_PROJECT_DIR),
            dbt_executable=str(Path(sys.executable).with_name("dbt")),
        ),
    }
