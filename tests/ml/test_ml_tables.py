"""The Markdown report tables carry the backtest numbers unchanged."""

from __future__ import annotations

from ml import tables


def _rows(md: str) -> list[list[str]]:
    return [[c.strip() for c in line.strip("|").split("|")] for line in md.splitlines()[2:]]


def test_backtest_table_has_every_split_and_model(trained):
    rows = _rows(tables.backtest_markdown(trained))
    n_models = 1 + len(trained.baselines)
    assert len(rows) == (len(trained.backtest["splits"]) + 1) * n_models
    first = trained.backtest["splits"][0]
    assert rows[0][0].startswith(first["split"]) and rows[0][1] == "**xgboost**"
    assert rows[0][2] == f"{first['model']['roc_auc']:.3f}"
    assert rows[0][8] == str(first["model"]["actual_churners"])
    mean = rows[-n_models]
    assert mean[2] == f"{trained.metrics['roc_auc']:.3f}" and mean[8] == str(trained.metrics["actual_churners"])
    rule = next(r for r in rows if r[1].startswith("rule_"))
    assert rule[5] == rule[6] == "n/a"  # a rule ranks; it has no Brier / ECE


def test_importance_lift_and_calibration_tables(trained):
    imp = _rows(tables.importance_markdown(trained, top_n=3))
    assert [r[0] for r in imp] == [r["feature"] for r in trained.feature_importance[:3]]
    tp = trained.test_predictions
    lift = _rows(tables.lift_markdown(tp["label"], tp["churn_probability"]))
    assert len(lift) == 10 and sum(int(r[2]) for r in lift) == int(tp["label"].sum())
    cal = _rows(tables.calibration_markdown(tp["label"], tp["churn_probability"]))
    assert sum(int(r[1]) for r in cal) == len(tp) and sum(int(r[5]) for r in cal) == int(tp["label"].sum())
