"""A self-contained static HTML churn report, built from the published tables.

One plotting library (matplotlib, Agg backend); every chart is a PNG embedded as base64, so
the file needs no network and opens anywhere. Plain functions; the asset is thin.
"""

from __future__ import annotations

import base64
import html
import io
import json
import os
import tempfile
from datetime import datetime, timezone
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402
import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402

REPORT_DIR = "report"


def _png(fig) -> str:
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=90, bbox_inches="tight")
    plt.close(fig)
    return "data:image/png;base64," + base64.b64encode(buf.getvalue()).decode()


def _img(src: str, alt: str) -> str:
    return f'<img alt="{html.escape(alt)}" src="{src}">'


def churn_trend_png(period: pd.DataFrame) -> str:
    fig, (ax1, ax2) = plt.subplots(2, 1, figsize=(9, 6), sharex=True)
    x = pd.to_datetime(period["period_start"])
    ax1.plot(x, period["churn_rate"] * 100, marker="o", color="#c0392b")
    ax1.set_ylabel("churn rate %")
    ax1.set_title("Customer churn rate per period")
    width = max(3, int((x.diff().dt.days.median() if len(x) > 1 else 30) * 0.7))
    pos = [("mrr_new", "#27ae60"), ("mrr_expansion", "#2ecc71"), ("mrr_reactivation", "#16a085")]
    neg = [("mrr_churned", "#c0392b"), ("mrr_contraction", "#e67e22")]
    bottom = np.zeros(len(period))
    for col, colour in pos:
        vals = period[col].astype(float).to_numpy()
        ax2.bar(x, vals, width=width, bottom=bottom, color=colour, label=col)
        bottom += vals
    bottom = np.zeros(len(period))
    for col, colour in neg:
        vals = -period[col].astype(float).to_numpy()
        ax2.bar(x, vals, width=width, bottom=bottom, color=colour, label=col)
        bottom += vals
    ax2.axhline(0, color="black", lw=0.5)
    ax2.set_title(f"MRR bridge ({period['mrr_basis'].iloc[0] if len(period) else 'mrr'})")
    ax2.legend(fontsize=7, ncol=5)
    return _png(fig)


def cohort_heatmap_png(cohorts: pd.DataFrame, max_cohorts: int = 24, max_age: int = 24) -> str:
    pivot = cohorts.pivot_table(index="cohort_period", columns="periods_since_acquisition", values="retention_rate")
    pivot = pivot.iloc[-max_cohorts:, :max_age]
    fig, ax = plt.subplots(figsize=(9, max(3, 0.3 * len(pivot) + 1)))
    im = ax.imshow(pivot.to_numpy(dtype=float), aspect="auto", cmap="viridis", vmin=0, vmax=1)
    ax.set_yticks(range(len(pivot)), [str(i)[:10] for i in pivot.index], fontsize=7)
    ax.set_xlabel("periods since acquisition")
    ax.set_title("Cohort retention (share of the cohort active)")
    fig.colorbar(im, ax=ax)
    return _png(fig)


def segment_ci_png(segments: pd.DataFrame, period_start) -> str:
    seg = segments[(segments["period_start"] == period_start) & (segments["customers_start"] > 0)].copy()
    seg = seg.sort_values(["segment_dimension", "segment_value"]).head(40)
    fig, ax = plt.subplots(figsize=(9, max(3, 0.28 * len(seg) + 1)))
    y = np.arange(len(seg))
    rate = seg["churn_rate"].astype(float).to_numpy()
    # clip: the interval's float bounds can sit a rounding error inside the rate at 0 or 1
    lo = np.clip(rate - seg["churn_rate_ci_low"].astype(float).to_numpy(), 0, None)
    hi = np.clip(seg["churn_rate_ci_high"].astype(float).to_numpy() - rate, 0, None)
    ax.errorbar(rate * 100, y, xerr=[lo * 100, hi * 100], fmt="o", color="#2c3e50", ecolor="#95a5a6", capsize=2)
    ax.set_yticks(y, [f"{d}={v}" for d, v in zip(seg["segment_dimension"], seg["segment_value"])], fontsize=7)
    ax.set_xlabel("churn rate % (Wilson 95% interval)")
    ax.set_title(f"Segment churn, period starting {str(period_start)[:10]}")
    return _png(fig)


def risk_histogram_png(scores: pd.DataFrame) -> str:
    fig, ax = plt.subplots(figsize=(9, 3))
    ax.hist(scores["churn_probability"].astype(float), bins=30, range=(0, 1), color="#8e44ad")
    ax.set_xlabel("churn probability")
    ax.set_ylabel("customers")
    ax.set_title("Risk distribution of active customers")
    return _png(fig)


def _table(df: pd.DataFrame, max_rows: int = 20) -> str:
    return df.head(max_rows).to_html(index=False, border=0, classes="t", float_format=lambda v: f"{v:,.4g}")


def build_report(published_dir: Path, *, model_metadata: dict | None, data_quality: list[dict],
                 gx_docs_index: Path | None) -> Path:
    """Write ``published_dir/report/index.html`` atomically and return its path."""
    read = lambda name: pd.read_parquet(published_dir / f"{name}.parquet")  # noqa: E731
    period = read("fct_churn_period")
    segments = read("fct_churn_segment_period")
    cohorts = read("fct_cohort_retention")
    scores = read("customer_churn_scores")
    manifest = json.loads((published_dir / "manifest.json").read_text())
    last = period.iloc[-1] if len(period) else None

    parts = [
        "<h1>Churn report</h1>",
        f"<p>Source <b>{html.escape(str(manifest.get('source')))}</b>, as-of date "
        f"<b>{html.escape(str(manifest.get('as_of_date')))}</b>, churn definition "
        f"<b>{html.escape(str(manifest.get('churn_definition')))}</b>, run {html.escape(str(manifest.get('run_id')))}.</p>",
    ]
    if last is not None:
        nrr = "n/a" if pd.isna(last["nrr"]) else f"{float(last['nrr']):.1%}"
        parts.append(
            f"<p>Last period {str(last['period_start'])[:10]}: churn rate <b>{float(last['churn_rate'] or 0):.2%}</b> "
            f"({int(last['customers_churned'])} of {int(last['customers_start'])}); NRR {nrr}.</p>")
    parts += ["<h2>Churn trend and MRR bridge</h2>", _img(churn_trend_png(period), "churn trend"),
              _table(period[["period_start", "customers_start", "customers_churned", "churn_rate", "mrr_start",
                             "mrr_end", "nrr"]].tail(12), 12)]
    if len(cohorts):
        parts += ["<h2>Cohort retention</h2>", _img(cohort_heatmap_png(cohorts), "cohort retention heatmap")]
    if len(segments) and last is not None:
        parts += ["<h2>Segment churn (last period)</h2>",
                  _img(segment_ci_png(segments, segments["period_start"].max()), "segment churn")]
    parts += ["<h2>Risk</h2>", _img(risk_histogram_png(scores), "risk distribution"), "<h3>Top at-risk customers</h3>"]
    cols = [c for c in ["customer_id", "churn_probability", "risk_tier", "top_drivers", "recommended_action",
                        "monthly_value"] if c in scores.columns]
    parts.append(_table(scores.sort_values("churn_probability", ascending=False)[cols], 20))
    if model_metadata:
        m = model_metadata.get("metrics", {})
        parts += ["<h2>Model quality</h2>",
                  f"<p>Test ROC AUC {m.get('roc_auc', float('nan')):.3f}, PR AUC {m.get('pr_auc', float('nan')):.3f}, "
                  f"top-decile lift {m.get('top_decile_lift', float('nan')):.2f}, Brier {m.get('brier', float('nan')):.4f}, "
                  f"ECE {m.get('expected_calibration_error', float('nan')):.4f}; expected churners "
                  f"{m.get('expected_churners', float('nan')):.1f} vs actual {m.get('actual_churners', float('nan')):.0f}.</p>"]
        rows = [{"model": "xgboost", **{k: m.get(k) for k in ("roc_auc", "pr_auc", "top_decile_lift", "brier")}}]
        for name, b in (model_metadata.get("baselines") or {}).items():
            rows.append({"model": name, **{k: b.get(k) for k in ("roc_auc", "pr_auc", "top_decile_lift", "brier")}})
        parts.append(_table(pd.DataFrame(rows)))
        preds_path = model_metadata.get("_predictions_path")
        if preds_path and Path(preds_path).exists():
            from ml import plots

            tp = pd.read_csv(preds_path)
            y, p = tp["label"].to_numpy(dtype=float), tp["churn_probability"].to_numpy(dtype=float)
            parts += [_img("data:image/png;base64," + base64.b64encode(plots.lift_chart_png(y, p)).decode(), "lift chart"),
                      _img("data:image/png;base64," + base64.b64encode(plots.calibration_png(y, p)).decode(), "calibration")]
    parts.append("<h2>Data quality</h2>")
    parts.append(_table(pd.DataFrame(data_quality)) if data_quality else "<p>No checks recorded.</p>")
    if gx_docs_index is not None:
        parts.append(f'<p>Great Expectations Data Docs: <a href="{html.escape(gx_docs_index.as_uri())}">'
                     f"{html.escape(str(gx_docs_index))}</a></p>")
    parts.append(f"<p class='foot'>Generated {datetime.now(timezone.utc).isoformat(timespec='seconds')}</p>")
    style = ("body{font-family:system-ui,sans-serif;max-width:1000px;margin:2em auto;color:#222}"
             "img{max-width:100%}table.t{border-collapse:collapse;font-size:12px;margin:1em 0}"
             "table.t td,table.t th{padding:3px 8px;border-bottom:1px solid #ddd;text-align:right}"
             ".foot{color:#888;font-size:11px}")
    doc = (f"<!doctype html><html><head><meta charset='utf-8'><title>Churn report</title><style>{style}</style>"
           f"</head><body>{''.join(parts)}</body></html>")
    out_dir = published_dir / REPORT_DIR
    out_dir.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=out_dir, prefix=".index-", suffix=".html")
    with os.fdopen(fd, "w", encoding="utf-8") as f:
        f.write(doc)
    os.chmod(tmp, 0o644)  # mkstemp makes it private; readers of the report are other users
    target = out_dir / "index.html"
    os.replace(tmp, target)
    return target
