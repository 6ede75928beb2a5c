"""Synthetic observation tables with a known signal, shared by the ml/ tests.

(A uniquely named module rather than conftest, so ``import`` cannot pick up another
folder's conftest.)
"""

from __future__ import annotations

import numpy as np
import pandas as pd

DRIVER = "login_gap_days"  # the only feature the label depends on


def make_observations(
    n_customers: int = 500,
    n_dates: int = 5,
    *,
    seed: int = 0,
    scoring_date: bool = True,
    u_shaped: bool = False,
) -> pd.DataFrame:
    """One row per customer x month-end; label ~ Bernoulli(sigmoid(-3 + 0.15*login_gap_days)).

    With ``u_shaped`` the risk is high for very short *and* very long login gaps
    (logit = -3 + 6 * [gap < 4 or gap > 30]): a tree model captures it, a logistic
    regression on the raw gap cannot.

    tenure_days, plan, region and noise are irrelevant to the label.  ``_leak`` equals
    the label and must be ignored by the model (underscore prefix).  ``all_null`` is
    entirely null and must be dropped.  With ``scoring_date`` an extra, unlabelled
    month is appended (the scoring set).
    """
    rng = np.random.default_rng(seed)
    dates = pd.date_range("2024-01-31", periods=n_dates + int(scoring_date), freq="ME")
    rows = []
    for i, d in enumerate(dates):
        gap = rng.exponential(15.0, n_customers)
        logit = -3.0 + 6.0 * ((gap < 4) | (gap > 30)) if u_shaped else -3.0 + 0.15 * gap
        label = (rng.random(n_customers) < 1 / (1 + np.exp(-logit))).astype(float)
        is_scoring = scoring_date and i == len(dates) - 1
        region = rng.choice(["north", "south", "east"], n_customers).astype(object)
        region[rng.random(n_customers) < 0.1] = None
        rows.append(
            pd.DataFrame(
                {
                    "customer_id": [f"c{j:04d}" for j in range(n_customers)],
                    "observation_date": d,
                    "label": np.nan if is_scoring else label,
                    DRIVER: gap,
                    "tenure_days": rng.uniform(30, 2000, n_customers),
                    "plan": rng.choice(["basic", "pro", "enterprise"], n_customers),
                    "region": pd.Series(region, dtype="str"),
                    "noise": rng.normal(size=n_customers),
                    "monthly_value": rng.lognormal(4.0, 0.5, n_customers),
                    "all_null": pd.Series([None] * n_customers, dtype=object),
                    "_leak": np.nan if is_scoring else label,
                }
            )
        )
    return pd.concat(rows, ignore_index=True)


# A smaller search for the tests (the pipeline searches all of ml.train.SEARCH_SPACE):
# two configurations and at most 200 rounds keep each training run to a second or two.
FAST = {
    "search_space": (
        {"max_depth": 2, "eta": 0.1, "min_child_weight": 1.0, "lambda": 1.0},
        {"max_depth": 4, "eta": 0.1, "min_child_weight": 5.0, "lambda": 1.0},
    ),
    "params": {"num_boost_round": 200},
}
