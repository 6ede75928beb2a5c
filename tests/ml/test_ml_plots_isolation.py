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
