"""The static HTML report: self-contained, every chart rendered, headline figures right."""

from __future__ import annotations

import json
import re
from datetime import date

import pandas as pd

from orchestration.report import build_report


def _published(tmp_path):
    pub = tmp_path / "published"
    pub.mkdir()
    periods = pd.DataFrame({
        "period_start": [date(2024, 1, 1), date(2024, 2, 1)],
        "period_end": [date(2024, 1, 31), date(2024, 2, 29)],
        "customers_start": [10, 12], "customers_churned": [1, 3], "churn_rate": [0.1, 0.25],
        "mrr_basis": ["mrr", "mrr"], "mrr_start": [100.0, 120.0], "mrr_new": [30.0, 0.0], "mrr_expansion": [0.0, 5.0],
        "mrr_reactivation": [0.0, 0.0], "mrr_churned": [10.0, 30.0], "mrr_contraction": [0.0, 0.0],
        "mrr_end": [120.0, 95.0], "nrr": [0.9, 0.7916666666666666],
    })
    periods.to_parquet(pub / "fct_churn_period.parquet")
    pd.DataFrame({
        "period_start": [date(2024, 2, 1)] * 2, "segment_dimension": ["country"] * 2, "segment_value": ["de", "us"],
        "customers_start": [5, 7], "churn_rate": [0.2, 2 / 7], "churn_rate_ci_low": [0.04, 0.08],
        "churn_rate_ci_high": [0.62, 0.64],
    }).to_parquet(pub / "fct_churn_segment_period.parquet")
    pd.DataFrame({
        "cohort_period": [date(2024, 1, 1), date(2024, 1, 1), date(2024, 2, 1)],
        "periods_since_acquisition": [0, 1, 0], "retention_rate": [1.0, 0.8, 0.9],
    }).to_parquet(pub / "fct_cohort_retention.parquet")
    pd.DataFrame({
        "customer_id": ["a", "b", "c"], "churn_probability": [0.9, 0.1, 0.5], "risk_tier": ["high", "low", "high"],
        "top_drivers": ["recency (+1.2)", "tenure (+0.1)", "tickets (+0.4)"], "monthly_value": [10.0, 20.0, 5.0],
    }).to_parquet(pub / "customer_churn_scores.parquet")
    (pub / "manifest.json").write_text(json.dumps({"source": "synthetic", "as_of_date": "2024-02-29",
                                                   "churn_definition": "contractual", "run_id": "r1"}))
    return pub


def test_report_is_self_contained_and_says_the_right_numbers(tmp_path):
    pub = _published(tmp_path)
    path = build_report(pub, model_metadata=None, data_quality=[{"table": "orders", "rows_quarantined": 2}],
                        gx_docs_index=None)
    text = path.read_text()
    assert path == pub / "report" / "index.html"
    # last period: 3 of 12 churned = 25.00%, NRR (120 - 30 + 5) / 120 = 79.2%
    assert "churn rate <b>25.00%</b> (3 of 12)" in text and "NRR 79.2%" in text
    images = re.findall(r'<img alt="([^"]+)" src="data:image/png;base64,([A-Za-z0-9+/=]+)"', text)
    assert [a for a, _ in images] == ["churn trend", "cohort retention heatmap", "segment churn", "risk distribution"]
    assert all(len(b) > 2000 for _, b in images)  # real PNGs, not empty placeholders
    # no network: nothing is loaded from http(s)
    assert not re.search(r'(src|href)="https?://', text)
    # the top at-risk table is sorted by probability: a (0.9) before c (0.5) before b (0.1)
    assert text.index(">a<") < text.index(">c<") < text.index(">b<")
    assert "orders" in text and not list((pub / "report").glob(".index-*"))
