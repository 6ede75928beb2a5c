"""The model quality gate: may this model score customers?

A model passes when, on its backtest (``TrainResult.metrics`` / ``.baselines``, i.e. the
means over the rolling-origin cutoffs or the cross-validation folds):

1. its ROC AUC beats the best baseline's ROC AUC, allowing ``auc_tolerance`` (default
   0.005) for the noise of a few thousand test rows: ``auc_model > auc_best_baseline -
   auc_tolerance``.  A model that cannot beat a logistic regression or a one-line rule by more
   than noise adds complexity without adding ranking skill;
2. its expected calibration error is at most ``max_ece`` (default 0.05): the probabilities
   are summed into expected churners and multiplied into MRR at risk and CLV, so they must be
   probabilities, not just scores.  The ECE used is that of all backtest test predictions
   pooled (``pooled_expected_calibration_error``; the mean per-split ECE when absent): with
   10 bins, a test set of a few hundred rows has an ECE of several points from sampling noise
   alone, which pooling the splits reduces.

The thresholds travel with the model (``gate_thresholds`` in its metadata), so a model is
always judged by the thresholds it was trained for.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, field
from typing import Any

DEFAULT_AUC_TOLERANCE = 0.005
DEFAULT_MAX_ECE = 0.05


@dataclass(frozen=True)
class GateThresholds:
    auc_tolerance: float = DEFAULT_AUC_TOLERANCE
    max_ece: float = DEFAULT_MAX_ECE

    def to_dict(self) -> dict[str, float]:
        return asdict(self)

    @classmethod
    def from_dict(cls, d: dict[str, Any] | None) -> "GateThresholds":
        d = d or {}
        return cls(
            auc_tolerance=float(d.get("auc_tolerance", DEFAULT_AUC_TOLERANCE)),
            max_ece=float(d.get("max_ece", DEFAULT_MAX_ECE)),
        )


@dataclass
class GateDecision:
    passed: bool
    reasons: list[str]
    model_auc: float | None
    best_baseline: str | None
    best_baseline_auc: float | None
    ece: float | None
    thresholds: GateThresholds = field(default_factory=GateThresholds)

    def to_dict(self) -> dict[str, Any]:
        out = asdict(self)
        out["thresholds"] = self.thresholds.to_dict()
        return out

    @property
    def summary(self) -> str:
        head = "PASSED" if self.passed else "FAILED"
        return f"{head}: " + "; ".join(self.reasons)


def _num(v: Any) -> float | None:
    if v is None:
        return None
    v = float(v)
    return None if math.isnan(v) else v


def evaluate_gate(
    metrics: dict[str, Any], baselines: dict[str, dict[str, Any]], thresholds: GateThresholds | None = None
) -> GateDecision:
    """Apply the gate to a model's backtest summary and its baselines' summaries."""
    t = thresholds or GateThresholds()
    auc = _num(metrics.get("roc_auc"))
    ece = _num(metrics.get("pooled_expected_calibration_error", metrics.get("expected_calibration_error")))
    base_aucs = {k: _num(v.get("roc_auc")) for k, v in (baselines or {}).items()}
    base_aucs = {k: v for k, v in base_aucs.items() if v is not None}
    best_name = max(base_aucs, key=lambda k: base_aucs[k]) if base_aucs else None
    best_auc = base_aucs[best_name] if best_name else None
    reasons: list[str] = []
    passed = True
    if auc is None:
        passed = False
        reasons.append("model ROC AUC is undefined")
    elif best_auc is None:
        reasons.append(f"AUC {auc:.4f}; no baseline to compare against")
    elif auc > best_auc - t.auc_tolerance:
        reasons.append(f"AUC {auc:.4f} vs best baseline {best_name} {best_auc:.4f} (tolerance {t.auc_tolerance})")
    else:
        passed = False
        reasons.append(f"AUC {auc:.4f} does not beat best baseline {best_name} {best_auc:.4f} "
                       f"(tolerance {t.auc_tolerance})")
    if ece is None:
        passed = False
        reasons.append("ECE is undefined")
    elif ece <= t.max_ece:
        reasons.append(f"ECE {ece:.4f} <= {t.max_ece}")
    else:
        passed = False
        reasons.append(f"ECE {ece:.4f} exceeds {t.max_ece}")
    return GateDecision(passed=passed, reasons=reasons, model_auc=auc, best_baseline=best_name,
                        best_baseline_auc=best_auc, ece=ece, thresholds=t)
