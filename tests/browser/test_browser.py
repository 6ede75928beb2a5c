"""Browser checks in headless Chromium: the HTML report renders every chart offline, and the Dagster UI
shows the asset graph and the last run as succeeded. Screenshots go to the test's tmp_path."""

from __future__ import annotations

import re
import time

import pandas as pd
from browser_helpers import CHART_STATE_JS, last_run_row, open_asset_graph, png_size, stage_keys

# the report's chart sections (orchestration/report.py), in page order
CHARTS = ["churn trend", "cohort retention heatmap", "segment churn", "risk distribution", "lift chart", "calibration"]


def _expected_charts(run) -> list[str]:
    """The charts this run's report must have: every section's data is there, so all of them."""
    pub = run.data_dir / "published"
    assert len(pd.read_parquet(pub / "fct_churn_period.parquet"))
    assert len(pd.read_parquet(pub / "fct_cohort_retention.parquet"))
    assert len(pd.read_parquet(pub / "fct_churn_segment_period.parquet"))
    scores = pd.read_parquet(pub / "customer_churn_scores.parquet")
    assert len(scores)
    model = run.data_dir / "models" / "synthetic" / str(scores["model_version"].iloc[0])
    assert (model / "metadata.json").exists() and (model / "test_predictions.csv").exists()
    return CHARTS


def test_report_in_browser(chromium, materialized_run, tmp_path):
    started = time.time()
    report = materialized_run.report
    assert report.exists()
    expected = _expected_charts(materialized_run)

    context = chromium.new_context(viewport={"width": 1280, "height": 900})
    page = context.new_page()
    console_errors, page_errors, failed, remote = [], [], [], []
    page.on("console", lambda m: console_errors.append(m.text) if m.type == "error" else None)
    page.on("pageerror", lambda e: page_errors.append(str(e)))
    page.on("requestfailed", lambda r: failed.append(f"{r.url[:120]} {r.failure}"))

    def no_network(route):
        # the report must be self-contained: any http(s) request is recorded and refused
        if route.request.url.startswith(("http://", "https://")):
            remote.append(route.request.url)
            route.abort()
        else:
            route.continue_()

    context.route("**/*", no_network)
    try:
        page.goto(report.as_uri(), wait_until="load")
        page.wait_for_load_state("networkidle")
        charts = page.evaluate(CHART_STATE_JS)
        shot = tmp_path / "report.png"
        page.screenshot(path=str(shot), full_page=True)
    finally:
        context.close()

    assert remote == [], f"the report requested the network: {remote}"
    assert failed == [], failed
    assert console_errors == [] and page_errors == [], (console_errors, page_errors)
    # every chart rendered: a decoded image (or drawn svg / painted canvas) with a visible box
    assert [c["name"] for c in charts] == expected, charts
    broken = [c for c in charts if not (c["ok"] and c["w"] > 50 and c["h"] > 50)]
    assert broken == [], broken
    assert len(charts) == len(re.findall(r"<(img|svg|canvas)\b", report.read_text()))
    width, height = png_size(shot)
    assert width >= 1000 and height > 2000, (width, height)  # the full page, not the first screen
    assert shot.stat().st_size > 50_000
    print(f"report check: {time.time() - started:.1f}s, {len(charts)} charts, screenshot {shot}")


def test_dagster_ui_in_browser(chromium, materialized_run, dagster_ui, tmp_path):
    started = time.time()
    keys, groups = stage_keys(dagster_ui)
    context = chromium.new_context(viewport={"width": 1600, "height": 1000})
    page = context.new_page()
    try:
        found = open_asset_graph(page, dagster_ui, keys, groups)
        graph_shot = tmp_path / "ui-asset-graph.png"
        page.screenshot(path=str(graph_shot))
        row = last_run_row(page, dagster_ui)
        runs_shot = tmp_path / "ui-runs.png"
        page.screenshot(path=str(runs_shot))
    finally:
        context.close()

    missing = [k for k, label in found.items() if label is None]
    assert missing == [], f"asset graph has no node for {missing}; nodes: {found}"
    # the newest run is ours, and it succeeded
    assert row["id"] == materialized_run.run_id[:8], row
    assert "churn_pipeline" in row["text"] and "Success" in row["text"], row
    for shot in (graph_shot, runs_shot):
        assert png_size(shot) == (1600, 1000) and shot.stat().st_size > 20_000
    print(f"UI check: {time.time() - started:.1f}s in the browser; pipeline run {materialized_run.seconds:.0f}s; "
          f"screenshots {graph_shot}, {runs_shot}")
