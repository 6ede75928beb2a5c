"""CDNOW adapter: the real CDNOW purchase log (Fader & Hardie) shipped inside ``lifetimes``.

The file ``lifetimes/datasets/CDNOW_master.txt`` has a header line and whitespace-separated
columns ``customer_id`` (zero-padded, e.g. ``00001``), ``date`` (YYYYMMDD), ``number_of_cds``
and ``dollar_value``: 69,659 purchase rows of the 23,570 customers who made their first
purchase in Q1 1997, followed until 1998-06-30.  The file is located through the installed
distribution's metadata, without importing ``lifetimes`` (it is installed with ``--no-deps``
and its own imports would need packages we do not install).

Landing tables written:

* ``customers``: ``customer_id`` (string as in the file), ``signup_date`` (first purchase).
* ``orders``: ``order_id`` (``<customer_id>-<n>``, n = 1-based position of the row among that
  customer's rows in file order), ``customer_id``, ``order_date``, ``amount`` (= dollar_value;
  80 rows are 0.00 and are kept), ``status`` (always ``completed``), ``number_of_cds`` (extra).
"""

from __future__ import annotations

import importlib.metadata
from pathlib import Path

import pandas as pd

from orchestration.ingest.sources._landing import prepare_dest, write_table

DIST_NAME = "lifetimes"
DATA_FILE = "lifetimes/datasets/CDNOW_master.txt"


def data_file() -> Path:
    """Return the path of ``CDNOW_master.txt`` inside the installed ``lifetimes`` wheel."""
    try:
        dist = importlib.metadata.distribution(DIST_NAME)
    except importlib.metadata.PackageNotFoundError:
        raise RuntimeError(
            "CDNOW data not found: the 'lifetimes' package is not installed; run `make install`"
        ) from None
    path = Path(str(dist.locate_file(DATA_FILE)))
    if not path.is_file():
        raise RuntimeError(f"CDNOW data file missing at {path}; run `make install` to reinstall it")
    return path


def read_raw(path: Path | None = None) -> pd.DataFrame:
    """Read the raw CDNOW file as typed columns, in file order."""
    path = Path(path) if path is not None else data_file()
    raw = pd.read_csv(
        path,
        sep=r"\s+",
        dtype={"customer_id": str, "date": str, "number_of_cds": "int64", "dollar_value": float},
    )
    raw["date"] = pd.to_datetime(raw["date"], format="%Y%m%d")
    return raw


def write_landing(dest: Path, source_file: Path | None = None) -> dict[str, int]:
    """Write the CDNOW ``customers`` and ``orders`` tables to the landing folder ``dest``.

    ``source_file`` overrides the location of ``CDNOW_master.txt`` (default: inside the
    installed ``lifetimes`` distribution).  Returns the rows written per table.
    """
    raw = read_raw(source_file)
    dest = prepare_dest(dest)

    position = raw.groupby("customer_id", sort=False).cumcount() + 1
    orders = pd.DataFrame(
        {
            "order_id": raw["customer_id"] + "-" + position.astype(str),
            "customer_id": raw["customer_id"],
            "order_date": raw["date"],
            "amount": raw["dollar_value"],
            "status": "completed",
            "number_of_cds": raw["number_of_cds"],
        }
    )
    customers = (
        raw.groupby("customer_id", sort=False)["date"].min().rename("signup_date").reset_index()
    )
    return {
        "customers": write_table(dest / "customers.parquet", "customers", customers),
        "orders": write_table(dest / "orders.parquet", "orders", orders),
    }
