"""Shared fixtures for the ml/ tests."""

from __future__ import annotations

import sys
from pathlib import Path

import pandas as pd
import pytest

# Make the repo root (``import ml``) and this folder (``import ml_synthetic``)
# importable however pytest is invoked.
_HERE = Path(__file__).resolve().parent
for _p in (_HERE.parents[1], _HERE):
    if str(_p) not in sys.path:
        sys.path.insert(0, str(_p))

from ml_synthetic import FAST, make_observations  # noqa: E402


@pytest.fixture(scope="session")
def observations() -> pd.DataFrame:
    return make_observations()


@pytest.fixture(scope="session")
def trained(observations):
    from ml.train import train_model

    return train_model(observations, seed=0, **FAST)


@pytest.fixture(scope="session")
def u_observations() -> pd.DataFrame:
    """A signal a tree model can learn and a logistic regression cannot (see make_observations)."""
    return make_observations(600, 5, seed=11, u_shaped=True)


@pytest.fixture(scope="session")
def u_trained(u_observations):
    from ml.train import train_model

    return train_model(u_observations, seed=0, **FAST)
