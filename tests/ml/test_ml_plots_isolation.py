"""Charts render to PNG, and ml/ stays independent of the orchestrator."""

from __future__ import annotations

import ast
from pathlib import Path

from ml.plots import calibration_png, importance_png, lift_chart_png

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
ML_DIR = Path(__file__).resolve().parents[2] / "ml"


def test_plots_return_png_bytes(trained):
    tp = trained.test_predictions
    for png in (
        lift_chart_png(tp["label"], tp["churn_probability"]),
        calibration_png(tp["label"], tp["churn_probability"]),
        importance_png(trained),
    ):
        assert isinstance(png, bytes) and png.startswith(PNG_MAGIC) and len(png) > 1000


def test_ml_sources_never_import_orchestration_or_dagster():
    offenders = []
    for path in ML_DIR.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom) and node.module:
                names = [node.module]
            offenders += [(path.name, n) for n in names if n.split(".")[0] in {"orchestration", "dagster", "dagster_dbt"}]
    assert offenders == []


def test_segment_risk_panels_by_hand():
    import pandas as pd

    from ml.plots import segment_panels, segment_risk_png

    seg = pd.DataFrame({
        "segment_dimension": ["all", "plan", "plan", "plan", "region", "region"],
        "segment_value": ["all", "basic", "pro", "free", "north", "south"],
        "customers": [100, 40, 30, 30, 50, 50],
        "mean_churn_probability": [0.30, 0.20, 0.10, 0.60, 0.32, 0.28],
    })
    panels = segment_panels(seg, max_values=2)
    # plan spreads 0.60 - 0.10 = 0.50, region 0.04: plan first; riskiest two values of each
    assert [d for d, _ in panels] == ["plan", "region"]
    assert list(panels[0][1]["segment_value"]) == ["free", "basic"]
    assert list(panels[1][1]["segment_value"]) == ["north", "south"]
    assert segment_panels(seg, max_dimensions=1)[0][0] == "plan"
    png = segment_risk_png(seg)
    assert png.startswith(PNG_MAGIC) and len(png) > 1000
    assert segment_panels(seg[seg.segment_dimension == "all"]) == []
    assert segment_risk_png(seg[seg.segment_dimension == "all"]).startswith(PNG_MAGIC)
