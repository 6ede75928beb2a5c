"""The dbt asset's helpers."""

from __future__ import annotations

from orchestration.assets.dbt import keep_partial_parse


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
