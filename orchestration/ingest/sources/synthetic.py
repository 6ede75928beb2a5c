"""Synthetic CRM adapter: a seeded, deterministic generator of all six contract tables.

Every customer gets latent traits that drive both their behaviour and their churn hazard:

* contract type (monthly / annual): annual customers churn far less, and only at an
  anniversary of their signup;
* loyalty membership: members churn less and produce ``loyalty_events`` (enroll, earn,
  redeem, tier_change, and ``leave`` when they churn);
* service trouble: many more support tickets, lower ``satisfaction_score``, more unresolved
  tickets and a higher churn hazard; churners often open a ticket in the last two months;
* engagement: a per-customer interaction rate (more engaged customers churn less); the rate
  decays over the ~90 days before the churn date (orders decay too, less steeply).

Customers sign up uniformly across the window ``[start, start + months)``.  Each has one or more
subscriptions: plan upgrades/downgrades start a new row (different ``mrr``) on the day the
previous one ends; churners' last subscription has an ``end_date`` (exclusive); some churners
reactivate later with a new (monthly) subscription.  All dates and timestamps fall inside the window
(a ticket resolved after the window end is left unresolved).  Rough per-customer volumes at the
default settings (24 months): ~77 interactions, ~7 orders, ~1.4 support tickets, ~1.1 loyalty
events and ~1.2 subscriptions; overall churn is ~4% per customer-month of service.

Output is chunked: customers are generated ``chunk_customers`` at a time and every table is
written as ``<dest>/<table>/part-NNNNN.parquet``, one part per chunk, so memory stays bounded
at any size.  Everything is drawn from ``numpy.random.Generator`` streams seeded by
``(seed, chunk number)``: the same ``seed`` and ``chunk_customers`` give identical files.  Keys
are globally unique (``C0000001``, ``S…``, ``O…``, ``I…``, ``T…``, ``L…``).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd
import pyarrow as pa
import pyarrow.compute as pc

from orchestration.ingest.sources._landing import prepare_dest, write_table

TABLE_NAMES = (
    "customers",
    "subscriptions",
    "orders",
    "interactions",
    "support_tickets",
    "loyalty_events",
)

COUNTRIES = ("US", "GB", "DE", "FR", "NL", "ES", "SE")
COUNTRY_P = (0.30, 0.16, 0.15, 0.12, 0.10, 0.10, 0.07)
CHANNELS = ("organic", "paid_search", "social", "referral", "partner", "email")
CHANNEL_P = (0.30, 0.22, 0.15, 0.13, 0.10, 0.10)
CHANNEL_CHURN = (0.0, 0.15, 0.30, -0.35, -0.10, 0.05)  # log-hazard effects
TIERS = ("basic", "standard", "premium")
TIER_PRICE = (19.0, 39.0, 79.0)
ANNUAL_DISCOUNT = 0.85
PRIORITIES = ("low", "medium", "high", "urgent")
CATEGORIES = ("billing", "technical", "account", "product", "other")
LOYALTY_TIERS = ("bronze", "silver", "gold")
LOYALTY_THRESHOLDS = (1_000.0, 3_000.0)  # lifetime points for silver, gold
LOYALTY_TYPES = ("enroll", "earn", "redeem", "tier_change", "leave")

# Monthly churn hazard model (log scale).
BASE_MONTHLY_HAZARD = 0.055
HAZARD_ANNUAL = -1.6
HAZARD_MEMBER = -0.6
HAZARD_TROUBLE = 1.0
HAZARD_ENGAGEMENT = -0.35  # per standard deviation of log engagement
HAZARD_BUSINESS = -0.3
DAYS_PER_MONTH = 30.4375

PRECHURN_DAYS = 90.0  # engagement decays over this many days before churning
INTERACTIONS_PER_DAY = 0.30  # mean candidate rate (before weekday / decay thinning)
ORDERS_PER_DAY = 0.026
TICKETS_PER_DAY = 1.2 / 365.0
TICKETS_PER_DAY_TROUBLE = 6.0 / 365.0
EARNS_PER_DAY = 1 / 130.0

_US_PER_DAY = 86_400_000_000
_US_PER_HOUR = 3_600_000_000

# Hour-of-day weights: interactions peak in the evening, tickets in office hours.
_HOURS_INTERACTIONS = np.array(
    [1, 0.6, 0.4, 0.3, 0.3, 0.5, 1.2, 2.5, 3.5, 3.5, 3.2, 3.2, 3.8, 3.6, 3.2, 3.2, 3.4, 3.8,
     4.2, 4.8, 5.2, 5.0, 3.8, 2.2]
)
_HOURS_TICKETS = np.array(
    [0.2, 0.1, 0.1, 0.1, 0.1, 0.2, 0.6, 1.5, 3.5, 4.5, 4.5, 4.2, 3.6, 4.0, 4.2, 4.0, 3.6, 3.0,
     2.0, 1.5, 1.2, 0.9, 0.6, 0.4]
)


@dataclass
class _Window:
    """The generation window in day offsets from ``start`` (day 0) to ``days`` (exclusive)."""

    start: date
    days: int
    epoch_day: int  # days since 1970-01-01 of ``start``
    start_weekday: int  # Monday = 0


def _window(start: date, months: int) -> _Window:
    end = (pd.Timestamp(start) + pd.DateOffset(months=months)).date()
    return _Window(
        start=start,
        days=(end - start).days,
        epoch_day=(start - date(1970, 1, 1)).days,
        start_weekday=start.weekday(),
    )


# ----------------------------------------------------------------------------- arrow helpers


def _ids(prefix: str, numbers: np.ndarray, width: int) -> pa.Array:
    """Fixed-width keys ``<prefix><number zero-padded to width>``, built without Python loops."""
    numbers = np.asarray(numbers, dtype=np.int64)
    head = prefix.encode()
    length = len(head) + width
    count = len(numbers)
    buf = np.empty((length, count), dtype=np.uint8)
    buf[: len(head)] = np.frombuffer(head, dtype=np.uint8)[:, None]
    rest = numbers.astype(np.uint32 if numbers.max(initial=0) < 2**32 else np.uint64)
    for k in range(length - 1, len(head) - 1, -1):
        rest, digit = np.divmod(rest, 10)
        buf[k] = digit + 48
    offsets = np.arange(0, count * length + 1, length, dtype=np.int64)
    data = np.ascontiguousarray(buf.T).reshape(-1)
    return pa.Array.from_buffers(
        pa.large_string(), count, [None, pa.py_buffer(offsets), pa.py_buffer(data)]
    ).cast(pa.string())


def _labels(
    values: tuple[str, ...], index: np.ndarray, valid: np.ndarray | None = None
) -> pa.Array:
    """Strings ``values[index]`` (null where ``valid`` is False)."""
    out = pa.array(values, type=pa.string()).take(pa.array(np.asarray(index, dtype=np.int64)))
    if valid is not None:
        out = pc.if_else(pa.array(valid), out, pa.scalar(None, pa.string()))
    return out


def _dates(win: _Window, day: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    days = (win.epoch_day + np.asarray(day, dtype=np.int64)).astype(np.int32)
    mask = None if valid is None else ~np.asarray(valid, dtype=bool)
    return pa.array(days, type=pa.date32(), mask=mask)


def _timestamps(win: _Window, us: np.ndarray, valid: np.ndarray | None = None) -> pa.Array:
    """Timestamps from microseconds since the window start."""
    values = np.asarray(us, dtype=np.int64) + win.epoch_day * _US_PER_DAY
    mask = None if valid is None else ~np.asarray(valid, dtype=bool)
    return pa.array(values, type=pa.timestamp("us"), mask=mask)


# ----------------------------------------------------------------------------- generation


def _choice(rng: np.random.Generator, p: tuple[float, ...] | np.ndarray, size: int) -> np.ndarray:
    cdf = np.cumsum(np.asarray(p, dtype=float))
    cdf /= cdf[-1]
    return np.minimum(np.searchsorted(cdf, rng.random(size), side="right"), len(cdf) - 1)


def _time_of_day_us(rng: np.random.Generator, weights: np.ndarray, size: int) -> np.ndarray:
    """Random times of day (microseconds) following hour-of-day ``weights``."""
    return _warp_time_of_day(rng.random(size), weights)


def _warp_time_of_day(fraction: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Map uniform fractions of a day to times of day (microseconds) with hour ``weights``.

    The map is monotone, so events that are sorted by time stay sorted.
    """
    cdf = np.concatenate([[0.0], np.cumsum(weights) / np.sum(weights)])
    hours = np.interp(fraction, cdf, np.arange(25.0))
    return np.minimum(np.floor(hours * _US_PER_HOUR).astype(np.int64), _US_PER_DAY - 1)


def _events(
    rng: np.random.Generator,
    start: np.ndarray,
    end: np.ndarray,
    churned: np.ndarray,
    rate: np.ndarray,
    win: _Window,
    decay_floor: float,
    weekend: float = 1.0,
) -> tuple[np.ndarray, np.ndarray]:
    """Poisson events inside day intervals ``[start, end)``; returns (interval index, time in days).

    Candidates are drawn at ``rate`` per day and thinned by a weekend factor and, for intervals
    that end in churn, by a decay that falls linearly to ``decay_floor`` over the last
    ``PRECHURN_DAYS`` days.  The result is ordered by interval, then time, without sorting:
    within an interval the uniform positions are generated already sorted (normalised
    cumulative sums of exponential spacings).
    """
    length = (end - start).astype(float)
    count = rng.poisson(rate * length)
    spacing = rng.standard_exponential(int(count.sum()) + len(start))
    group_end = np.cumsum(count + 1)  # exclusive end of each interval's spacings
    cum = np.cumsum(spacing)
    before = np.concatenate([[0.0], cum[group_end[:-1] - 1]])
    total = cum[group_end - 1] - before
    last = np.zeros(len(spacing), dtype=bool)
    last[group_end - 1] = True
    interval = np.repeat(np.arange(len(start)), count + 1)[~last]
    position = (cum[~last] - before[interval]) / total[interval]
    t = np.minimum(start[interval] + position * length[interval], end[interval] - 1e-6)
    day = np.floor(t).astype(np.int64)
    accept = np.ones(len(t))
    if weekend != 1.0:
        accept[(win.start_weekday + day) % 7 >= 5] = weekend
    left = end[interval] - t
    decaying = churned[interval] & (left < PRECHURN_DAYS)
    accept[decaying] *= decay_floor + (1 - decay_floor) * left[decaying] / PRECHURN_DAYS
    keep = rng.random(len(t)) < accept
    return interval[keep], t[keep]


def _timestamps_us(t: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Microseconds since the window start for times ``t`` in days, shaping the time of day."""
    day = np.floor(t)
    return day.astype(np.int64) * _US_PER_DAY + _warp_time_of_day(t - day, weights)


def _generate_chunk(
    rng: np.random.Generator, first: int, n: int, win: _Window, counters: dict[str, int]
) -> dict[str, pa.Table]:
    """Generate all six tables for customers ``first .. first + n - 1`` (0-based)."""
    W = win.days

    # --- latent traits and attributes -------------------------------------------------
    business = rng.random(n) < 0.15
    annual = rng.random(n) < np.where(business, 0.55, 0.25)
    member = rng.random(n) < np.where(annual, 0.40, 0.22)
    trouble = rng.random(n) < 0.18
    engagement_z = rng.standard_normal(n)
    interaction_rate = INTERACTIONS_PER_DAY * np.exp(0.6 * engagement_z - 0.18)
    order_rate = ORDERS_PER_DAY * np.exp(0.5 * rng.standard_normal(n) + 0.2 * engagement_z - 0.145)
    app_share = rng.beta(2.0, 2.0, n)
    channel = _choice(rng, CHANNEL_P, n)
    country = _choice(rng, COUNTRY_P, n)
    gender = _choice(rng, (0.49, 0.49, 0.02), n)  # female, male, unknown (null)
    birth_year = np.clip(np.round(rng.normal(1983, 14, n)), 1935, 2006).astype(np.int64)
    signup = rng.integers(0, W, n)
    seats = np.where(business, 1 + rng.poisson(6, n), 1)
    price_factor = np.exp(rng.normal(0, 0.05, n))

    # --- churn -----------------------------------------------------------------------
    log_hazard = (
        np.log(BASE_MONTHLY_HAZARD)
        + HAZARD_ANNUAL * annual
        + HAZARD_MEMBER * member
        + HAZARD_TROUBLE * trouble
        + HAZARD_ENGAGEMENT * engagement_z
        + HAZARD_BUSINESS * business
        + np.asarray(CHANNEL_CHURN)[channel]
        + rng.normal(0, 0.3, n)
    )
    hazard_per_day = np.exp(log_hazard) / DAYS_PER_MONTH
    survival_days = rng.exponential(1.0 / hazard_per_day)
    # monthly contracts can stop any day; annual ones only at an anniversary of the signup
    churn_day = np.where(
        annual,
        signup + 365 * np.maximum(np.ceil(survival_days / 365.0), 1),
        signup + np.maximum(np.ceil(survival_days), 1),
    ).astype(np.int64)
    churned = churn_day < W
    end1 = np.where(churned, churn_day, W)

    # some churners come back (as monthly customers) after a gap
    react_day = churn_day + 30 + np.ceil(rng.exponential(90.0, n)).astype(np.int64)
    react = churned & (rng.random(n) < 0.15) & (react_day < W - 1)
    react_cust = np.flatnonzero(react)
    # they return on a monthly contract (no annual discount on the hazard), a bit more fragile
    hazard2 = hazard_per_day[react_cust] * 1.3 * np.exp(-HAZARD_ANNUAL * annual[react_cust])
    survival2 = rng.exponential(1.0 / hazard2)
    churn2 = react_day[react_cust] + np.maximum(np.ceil(survival2), 1).astype(np.int64)
    churned2 = churn2 < W

    # active intervals: the first one for everybody, a second one for reactivated customers
    iv_cust = np.concatenate([np.arange(n), react_cust])
    iv_start = np.concatenate([signup, react_day[react_cust]])
    iv_end = np.concatenate([end1, np.where(churned2, churn2, W)])
    iv_churn = np.concatenate([churned, churned2])
    iv_annual = np.concatenate([annual, np.zeros(len(react_cust), dtype=bool)])
    by_customer = np.argsort(iv_cust, kind="stable")  # a customer's intervals are adjacent
    iv_cust, iv_start, iv_end = iv_cust[by_customer], iv_start[by_customer], iv_end[by_customer]
    iv_churn, iv_annual = iv_churn[by_customer], iv_annual[by_customer]
    n_iv = len(iv_cust)

    tables: dict[str, pa.Table] = {}
    cust_ids = _ids("C", first + 1 + np.arange(n), 7)

    # --- customers -----------------------------------------------------------------------
    updated_us = (signup + rng.random(n) * (W - signup)) * _US_PER_DAY
    tables["customers"] = pa.table(
        {
            "customer_id": cust_ids,
            "signup_date": _dates(win, signup),
            "country": _labels(COUNTRIES, country),
            "gender": _labels(("female", "male", "female"), gender, valid=gender < 2),
            "birth_year": pa.array(birth_year, type=pa.int64()),
            "acquisition_channel": _labels(CHANNELS, channel),
            "customer_type": _labels(("consumer", "business"), business.astype(np.int64)),
            "updated_at": _timestamps(win, updated_us.astype(np.int64)),
        }
    )

    # --- subscriptions: split each interval at plan changes --------------------------------
    length = iv_end - iv_start
    change_rate = np.where(iv_annual, 0.12, 0.25) / 365.0
    n_changes = np.minimum(rng.poisson(change_rate * length), np.maximum(length - 1, 0) // 30)
    ch_iv = np.repeat(np.arange(n_iv), n_changes)
    ch_offset = np.floor(rng.random(len(ch_iv)) * (length[ch_iv] - 1)).astype(np.int64)
    ch_day = iv_start[ch_iv] + 1 + ch_offset
    seg_iv = np.concatenate([np.arange(n_iv), ch_iv])
    seg_start = np.concatenate([iv_start, ch_day])
    order = np.lexsort((seg_start, seg_iv))
    seg_iv, seg_start = seg_iv[order], seg_start[order]
    keep = np.ones(len(seg_iv), dtype=bool)
    keep[1:] = (seg_iv[1:] != seg_iv[:-1]) | (seg_start[1:] != seg_start[:-1])
    seg_iv, seg_start = seg_iv[keep], seg_start[keep]
    is_last = np.ones(len(seg_iv), dtype=bool)
    is_last[:-1] = seg_iv[1:] != seg_iv[:-1]
    seg_end = np.empty_like(seg_start)
    seg_end[:-1] = seg_start[1:]
    seg_end[is_last] = iv_end[seg_iv[is_last]]
    seg_rank = np.arange(len(seg_iv)) - np.searchsorted(seg_iv, seg_iv)
    # plan tier path: start tier per interval, then +-1 steps (upgrades more common)
    iv_tier = _choice(rng, (0.40, 0.42, 0.18), n_iv)
    iv_tier = np.where(business[iv_cust] & (rng.random(n_iv) < 0.4), 2, iv_tier)
    seg_tier = iv_tier[seg_iv].copy()
    for r in range(1, int(seg_rank.max(initial=0)) + 1):
        idx = np.flatnonzero(seg_rank == r)
        prev = seg_tier[idx - 1]
        up = np.where(prev == 0, True, np.where(prev == 2, False, rng.random(len(idx)) < 0.6))
        seg_tier[idx] = prev + np.where(up, 1, -1)
    seg_cust = iv_cust[seg_iv]
    seg_annual = iv_annual[seg_iv]
    mrr = np.round(
        np.asarray(TIER_PRICE)[seg_tier]
        * np.where(seg_annual, ANNUAL_DISCOUNT, 1.0)
        * seats[seg_cust]
        * price_factor[seg_cust],
        2,
    )
    plan_index = seg_tier * 2 + seg_annual
    plan_names = tuple(f"{t}_{c}" for t in TIERS for c in ("monthly", "annual"))
    seg_open = is_last & ~iv_churn[seg_iv]
    n_seg = len(seg_iv)
    tables["subscriptions"] = pa.table(
        {
            "subscription_id": _ids("S", counters["subscriptions"] + 1 + np.arange(n_seg), 8),
            "customer_id": cust_ids.take(pa.array(seg_cust)),
            "plan": _labels(plan_names, plan_index),
            "start_date": _dates(win, seg_start),
            "end_date": _dates(win, seg_end, valid=~seg_open),
            "mrr": pa.array(mrr, type=pa.float64()),
        }
    )
    counters["subscriptions"] += n_seg

    # --- interactions ----------------------------------------------------------------------
    ev_iv, ev_t = _events(
        rng, iv_start, iv_end, iv_churn, interaction_rate[iv_cust], win,
        decay_floor=0.08, weekend=0.75,
    )
    ev_cust = iv_cust[ev_iv]  # already ordered by customer, then time
    ev_us = _timestamps_us(ev_t, _HOURS_INTERACTIONS)
    n_ev = len(ev_cust)
    is_email = rng.random(n_ev) < 0.25
    is_app = ~is_email & (rng.random(n_ev) < app_share[ev_cust])
    channel_idx = np.where(is_email, 2, np.where(is_app, 1, 0))  # web, app, email
    u = rng.random(n_ev)
    # login / open / click: email is opened or clicked, web and app sessions log in or click
    type_idx = np.where(is_email, np.where(u < 0.75, 1, 2), np.where(u < 0.65, 0, 2))
    tables["interactions"] = pa.table(
        {
            "interaction_id": _ids("I", counters["interactions"] + 1 + np.arange(n_ev), 10),
            "customer_id": cust_ids.take(pa.array(ev_cust)),
            "occurred_at": _timestamps(win, ev_us),
            "channel": _labels(("web", "app", "email"), channel_idx),
            "interaction_type": _labels(("login", "open", "click"), type_idx),
        }
    )
    counters["interactions"] += n_ev

    # --- orders -----------------------------------------------------------------------------
    od_iv, od_t = _events(
        rng, iv_start, iv_end, iv_churn, order_rate[iv_cust], win, decay_floor=0.35
    )
    od_cust = iv_cust[od_iv]  # already ordered by customer, then date
    od_day = np.floor(od_t).astype(np.int64)
    n_od = len(od_cust)
    amount = np.round(
        np.exp(rng.normal(np.log(32.0), 0.7, n_od)) * np.where(business[od_cust], 3.0, 1.0), 2
    )
    amount = np.maximum(amount, 1.0)
    status_p_refund = np.where(trouble[od_cust], 0.10, 0.04)
    u = rng.random(n_od)
    status = np.where(u < status_p_refund, 1, np.where(u < status_p_refund + 0.03, 2, 0))
    tables["orders"] = pa.table(
        {
            "order_id": _ids("O", counters["orders"] + 1 + np.arange(n_od), 9),
            "customer_id": cust_ids.take(pa.array(od_cust)),
            "order_date": _dates(win, od_day),
            "amount": pa.array(amount, type=pa.float64()),
            "status": _labels(("completed", "refunded", "cancelled"), status),
        }
    )
    counters["orders"] += n_od

    # --- support tickets -------------------------------------------------------------------------
    ticket_rate = np.where(trouble, TICKETS_PER_DAY_TROUBLE, TICKETS_PER_DAY)
    ticket_rate = ticket_rate * np.where(business, 1.3, 1.0)
    tk_iv, tk_t = _events(
        rng, iv_start, iv_end, np.zeros(n_iv, dtype=bool), ticket_rate[iv_cust], win,
        decay_floor=1.0, weekend=0.5,
    )
    tk_us = _timestamps_us(tk_t, _HOURS_TICKETS)
    # churners often raise a ticket in the last two months before leaving
    pre_p = np.where(trouble[iv_cust], 0.5, 0.2)
    pre_iv = np.flatnonzero(iv_churn & (rng.random(n_iv) < pre_p))
    pre_back = np.floor(rng.random(len(pre_iv)) * 60).astype(np.int64)
    pre_day = np.maximum(iv_end[pre_iv] - 1 - pre_back, iv_start[pre_iv])
    pre_us = pre_day * _US_PER_DAY + _time_of_day_us(rng, _HOURS_TICKETS, len(pre_iv))
    tk_iv = np.concatenate([tk_iv, pre_iv])
    tk_us = np.concatenate([tk_us, pre_us])
    tk_pre = np.arange(len(tk_iv)) >= len(tk_iv) - len(pre_iv)
    tk_cust = iv_cust[tk_iv]
    order = np.lexsort((tk_us, tk_cust))
    tk_cust, tk_us, tk_pre = tk_cust[order], tk_us[order], tk_pre[order]
    n_tk = len(tk_cust)
    tk_trouble = trouble[tk_cust]
    priority = _choice(rng, (0.35, 0.40, 0.20, 0.05), n_tk)
    escalated = (tk_trouble | tk_pre) & (rng.random(n_tk) < 0.35)
    priority = np.where(escalated, np.maximum(priority, 2), priority)  # at least "high"
    category = np.where(
        tk_trouble & (rng.random(n_tk) < 0.5), 1, _choice(rng, (0.30, 0.30, 0.15, 0.15, 0.10), n_tk)
    )
    p_resolved = np.where(tk_pre, 0.6, np.where(tk_trouble, 0.75, 0.94))
    hours = np.exp(rng.normal(np.where(tk_trouble, np.log(40.0), np.log(16.0)), 1.0))
    resolved_us = tk_us + np.ceil(hours * _US_PER_HOUR).astype(np.int64)
    resolved = (rng.random(n_tk) < p_resolved) & (resolved_us < W * _US_PER_DAY)
    mean_score = 4.4 - 1.6 * tk_trouble - 0.9 * tk_pre - 0.3 * np.log1p(hours / 24.0)
    score = np.clip(np.round(rng.normal(mean_score, 0.8)), 1, 5)
    scored = resolved & (rng.random(n_tk) < 0.6)
    tables["support_tickets"] = pa.table(
        {
            "ticket_id": _ids("T", counters["support_tickets"] + 1 + np.arange(n_tk), 8),
            "customer_id": cust_ids.take(pa.array(tk_cust)),
            "opened_at": _timestamps(win, tk_us),
            "resolved_at": _timestamps(win, resolved_us, valid=resolved),
            "priority": _labels(PRIORITIES, priority),
            "category": _labels(CATEGORIES, category),
            "satisfaction_score": pa.array(score, type=pa.float64(), mask=~scored),
        }
    )
    counters["support_tickets"] += n_tk

    # --- loyalty events (members, first active interval only) -------------------------------------
    tables["loyalty_events"] = _loyalty(
        rng, win, member, signup, end1, churned, cust_ids, counters
    )
    return tables


def _loyalty(
    rng: np.random.Generator,
    win: _Window,
    member: np.ndarray,
    signup: np.ndarray,
    end1: np.ndarray,
    churned: np.ndarray,
    cust_ids: pa.Array,
    counters: dict[str, int],
) -> pa.Table:
    """Loyalty events: enroll, earn, redeem, tier_change when lifetime points cross a threshold,
    and leave (forfeiting the balance) when the member churns."""
    enroll_day = signup + np.floor(rng.exponential(15.0, len(signup))).astype(np.int64)
    enrolled = np.flatnonzero(member & (enroll_day < end1))
    e_start = enroll_day[enrolled].astype(np.int64)
    e_end = end1[enrolled]
    span = (e_end - e_start).astype(float)
    earn_n = rng.poisson(EARNS_PER_DAY * span)
    redeem_n = rng.poisson(EARNS_PER_DAY * 0.3 * span)

    enroll_us = e_start * _US_PER_DAY + _time_of_day_us(rng, _HOURS_INTERACTIONS, len(enrolled))
    after_enroll = e_end * _US_PER_DAY - enroll_us  # microseconds left in the first interval

    def timed(counts: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        who = np.repeat(np.arange(len(enrolled)), counts)
        offset = np.floor(rng.random(len(who)) * after_enroll[who]).astype(np.int64)
        return who, enroll_us[who] + offset

    earn_who, earn_us = timed(earn_n)
    redeem_who, redeem_us = timed(redeem_n)
    leaver = np.flatnonzero(churned[enrolled])
    leave_us = e_end[leaver] * _US_PER_DAY + _time_of_day_us(rng, _HOURS_INTERACTIONS, len(leaver))
    leave_us = np.minimum(leave_us, win.days * _US_PER_DAY - 1)

    who = np.concatenate([np.arange(len(enrolled)), earn_who, redeem_who, leaver])
    when = np.concatenate([enroll_us, earn_us, redeem_us, leave_us])
    kind = np.concatenate(
        [
            np.zeros(len(enrolled), np.int64),
            np.ones(len(earn_who), np.int64),
            np.full(len(redeem_who), 2),
            np.full(len(leaver), 4),
        ]
    )
    order = np.lexsort((kind, when, who))
    who, when, kind = who[order], when[order], kind[order]
    earn_pts = np.round(np.exp(rng.normal(np.log(180.0), 0.6, len(who))))
    redeem_frac = rng.uniform(0.3, 0.9, len(who))

    # running balance / lifetime points per member, one event position at a time
    rank = np.arange(len(who)) - np.searchsorted(who, who)
    balance = np.zeros(len(enrolled))
    lifetime = np.zeros(len(enrolled))
    points = np.zeros(len(who))
    tier_before = np.zeros(len(who), np.int64)
    tier_after = np.zeros(len(who), np.int64)
    thresholds = np.asarray(LOYALTY_THRESHOLDS)
    by_rank = np.argsort(rank, kind="stable")
    bounds = np.searchsorted(rank[by_rank], np.arange(int(rank.max(initial=-1)) + 2))
    for r in range(len(bounds) - 1):
        idx = by_rank[bounds[r] : bounds[r + 1]]
        m = who[idx]
        k = kind[idx]
        tier_before[idx] = np.searchsorted(thresholds, lifetime[m], side="right")
        redeem = -np.floor(redeem_frac[idx] * balance[m])
        redeem = np.where(redeem > -50, 0.0, redeem)  # too little to redeem: no redemption
        pts = np.where(
            k == 1, earn_pts[idx], np.where(k == 2, redeem, np.where(k == 4, -balance[m], 0.0))
        )
        points[idx] = pts
        balance[m] += pts
        lifetime[m] += np.where(k == 1, pts, 0.0)
        tier_after[idx] = np.searchsorted(thresholds, lifetime[m], side="right")
    valid = ~((kind == 2) & (points == 0))  # drop the redemptions that did not happen
    # tier changes: an extra event one second after the earn that crossed a threshold
    crossed = np.flatnonzero(valid & (tier_after > tier_before))
    who = np.concatenate([who[valid], who[crossed]])
    when = np.concatenate([when[valid], when[crossed] + 1_000_000])
    kind_all = np.concatenate([kind[valid], np.full(len(crossed), 3)])
    points = np.concatenate([points[valid], np.zeros(len(crossed))])
    tier = np.concatenate([tier_after[valid], tier_after[crossed]])
    order = np.lexsort((kind_all, when, who))
    who, when, kind_all = who[order], when[order], kind_all[order]
    points, tier = points[order], tier[order]
    when = np.minimum(when, win.days * _US_PER_DAY - 1)
    n_le = len(who)
    table = pa.table(
        {
            "event_id": _ids("L", counters["loyalty_events"] + 1 + np.arange(n_le), 9),
            "customer_id": cust_ids.take(pa.array(enrolled[who])),
            "occurred_at": _timestamps(win, when),
            "event_type": _labels(LOYALTY_TYPES, kind_all),
            "points": pa.array(points + 0.0, type=pa.float64()),  # + 0.0 turns -0.0 into 0.0
            "tier": _labels(LOYALTY_TIERS, tier),
        }
    )
    counters["loyalty_events"] += n_le
    return table


def write_landing(
    dest: Path,
    n_customers: int = 2000,
    seed: int = 42,
    start: date = date(2023, 1, 1),
    months: int = 24,
    chunk_customers: int = 50_000,
) -> dict[str, int]:
    """Generate ``n_customers`` synthetic customers and write all six tables to ``dest``.

    Tables are written as ``<dest>/<table>/part-NNNNN.parquet`` (one part per chunk of
    ``chunk_customers`` customers); all dates fall in ``[start, start + months)``.  The same
    ``seed`` (and ``chunk_customers``) always gives identical output.  Returns the rows written
    per table.
    """
    if n_customers < 1:
        raise ValueError("n_customers must be >= 1")
    if months < 1:
        raise ValueError("months must be >= 1")
    if chunk_customers < 1:
        raise ValueError("chunk_customers must be >= 1")
    if n_customers > 9_999_999:
        raise ValueError("n_customers must be < 10,000,000 (customer ids are C + 7 digits)")
    win = _window(start, months)
    dest = prepare_dest(dest)
    counters = {name: 0 for name in TABLE_NAMES}
    rows = {name: 0 for name in TABLE_NAMES}
    n_chunks = -(-n_customers // chunk_customers)
    for chunk in range(n_chunks):
        first = chunk * chunk_customers
        size = min(chunk_customers, n_customers - first)
        rng = np.random.default_rng(np.random.SeedSequence(seed, spawn_key=(chunk,)))
        tables = _generate_chunk(rng, first, size, win, counters)
        for name in TABLE_NAMES:
            part = dest / name / f"part-{chunk:05d}.parquet"
            rows[name] += write_table(part, name, tables[name])
    return rows
