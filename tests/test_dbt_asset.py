"""The dbt asset's helpers."""

from __future__ import annotations

import os

from orchestration.assets.dbt import keep_partial_parse, prune_invocation_dirs


def test_the_runs_parse_state_replaces_the_projects(tmp_path):
    run, project = tmp_path / "run", tmp_path / "target"
    run.mkdir()
    project.mkdir()
    (run / "partial_parse.msgpack").write_bytes(b"parsed with the run's vars")
    (project / "partial_parse.msgpack").write_bytes(b"parsed by dbt parse")
    assert keep_partial_parse(run, project)
    assert (project / "partial_parse.msgpack").read_bytes() == b"parsed with the run's vars"
    assert [p.name for p in project.iterdir()] == ["partial_parse.msgpack"]  # no temporary file left
    # a run that wrote no parse state (dbt failed early) leaves the project's as it is
    assert not keep_partial_parse(tmp_path / "failed-run", project)
    assert (project / "partial_parse.msgpack").read_bytes() == b"parsed with the run's vars"


def test_only_the_newest_invocation_folders_are_kept(tmp_path):
    for i in range(5):
        d = tmp_path / f"churn_dbt_models-run{i}"
        d.mkdir()
        (d / "manifest.json").write_text("{}")
        os.utime(d, (1_000_000 + i, 1_000_000 + i))  # run4 is the newest
    (tmp_path / "partial_parse.msgpack").write_bytes(b"x")  # the project's own files stay
    removed = prune_invocation_dirs(tmp_path, keep=2)
    assert sorted(p.name for p in removed) == ["churn_dbt_models-run0", "churn_dbt_models-run1", "churn_dbt_models-run2"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["churn_dbt_models-run3", "churn_dbt_models-run4", "partial_parse.msgpack"]


def test_the_dbt_version_comes_from_the_installed_dbt_core_and_matches_the_executable():
    # dagster-dbt would run `dbt --version` on every run; the resource reads the package version
    # instead, which must be what that executable reports (the second method, run here once)
    import re
    import subprocess

    from orchestration.resources import ChurnDbtCliResource, build_resources

    dbt = build_resources()["dbt"]
    assert isinstance(dbt, ChurnDbtCliResource)
    printed = subprocess.run([dbt.dbt_executable, "--version"], capture_output=True, text=True, check=True).stdout
    core = re.search(r"installed:\s*(\d+\.\d+\.\d+)", printed) or re.search(r"(\d+\.\d+\.\d+)", printed)
    assert str(dbt._cli_version) == core.group(1)
    assert dbt._cli_version.major == 1  # dbt-core, not the Fusion engine
