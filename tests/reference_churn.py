"""A second, independent implementation of the churn arithmetic, in plain Python.

Small and slow on purpose: it simulates every customer day by day instead of working with
spans and window functions like the dbt models do, so the two share no logic beyond the
written definitions (README "Metrics"):

- a customer is active on day t (contractual) when a subscription covers t, with gaps of at
  most `grace_days` between subscriptions filled; (inactivity) when a completed order fell
  on one of the N days up to t;
- active at boundary b = active on day b-1 and on day b;
- MRR at boundary b = MRR of subscriptions active on both days; for inactivity, the revenue of
  the period that ends at b.
"""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass
from datetime import date, timedelta
from decimal import Decimal

ONE = timedelta(days=1)


def trunc(d: date, grain: str) -> date:
    if grain == "week":
        return d - timedelta(days=d.weekday())
    if grain == "month":
        return d.replace(day=1)
    return date(d.year, 3 * ((d.month - 1) // 3) + 1, 1)


def next_start(d: date, grain: str) -> date:
    if grain == "week":
        return d + timedelta(days=7)
    months = 1 if grain == "month" else 3
    m = d.month - 1 + months
    return date(d.year + m // 12, m % 12 + 1, 1)


@dataclass
class Sub:
    customer_id: str
    start: date
    end: date | None
    mrr: Decimal


@dataclass
class Order:
    customer_id: str
    day: date
    amount: Decimal
    status: str = "completed"


def active_days(subs: list[Sub], orders: list[Order], *, definition: str, as_of: date, inactivity_days: int,
                grace_days: int, horizon: date) -> set[date]:
    days: set[date] = set()
    if definition == "contractual":
        for s in subs:
            if s.start > as_of or (s.end is not None and s.end <= s.start):
                continue
            end = horizon if s.end is None or s.end > as_of + ONE else s.end
            d = s.start
            while d < end:
                days.add(d)
                d += ONE
        # fill gaps of at most grace_days inactive days between two active days
        ordered = sorted(days)
        for a, b in zip(ordered, ordered[1:]):
            gap = (b - a).days - 1
            if 0 < gap <= grace_days:
                days.update(a + ONE * k for k in range(1, gap + 1))
    else:
        for o in orders:
            if o.status != "completed" or o.day > as_of:
                continue
            for k in range(inactivity_days):
                if o.day + ONE * k <= horizon:
                    days.add(o.day + ONE * k)
    return days


def reference(customers: list[str], subs: list[Sub], orders: list[Order], *, definition: str, grain: str,
              as_of: date, inactivity_days: int = 90, grace_days: int = 7) -> tuple[dict, dict]:
    """Returns (period facts by period_start, customer flags by (customer_id, period_start))."""
    horizon = as_of + timedelta(days=3)
    subs_by = defaultdict(list)
    for s in subs:
        subs_by[s.customer_id].append(s)
    orders_by = defaultdict(list)
    for o in orders:
        orders_by[o.customer_id].append(o)
    active = {c: active_days(subs_by[c], orders_by[c], definition=definition, as_of=as_of,
                             inactivity_days=inactivity_days, grace_days=grace_days, horizon=horizon)
              for c in customers}
    active = {c: d for c, d in active.items() if d}
    if not active:
        return {}, {}
    last_boundary = trunc(as_of + ONE, grain)
    periods = []
    p = trunc(min(min(d) for d in active.values()), grain)
    while next_start(p, grain) <= last_boundary:
        periods.append(p)
        p = next_start(p, grain)
    boundaries = sorted(set(periods) | {next_start(p, grain) for p in periods})

    def at(c: str, b: date) -> bool:
        return (b - ONE) in active[c] and b in active[c]

    def value(c: str, b: date) -> Decimal:
        if definition == "contractual":
            return sum((s.mrr for s in subs_by[c] if s.start <= as_of and s.start < b and (s.end is None or s.end > b)),
                       Decimal(0))
        prev = [q for q in periods if next_start(q, grain) == b]
        if not prev:
            return Decimal(0)
        return sum((o.amount for o in orders_by[c] if o.status == "completed" and prev[0] <= o.day < b), Decimal(0))

    flags: dict = {}
    facts: dict = {}
    first_paid = {}
    values = {(c, b): value(c, b) for c in subs_by.keys() | orders_by.keys() for b in boundaries}
    for (c, b), v in sorted(values.items(), key=lambda kv: kv[0][1]):
        if v > 0 and c not in first_paid:
            first_paid[c] = b
    for p in periods:
        pe = next_start(p, grain)
        f = dict.fromkeys(["customers_start", "customers_new", "customers_reactivated", "customers_churned",
                           "customers_end", "customers_transient"], 0)
        for c, days in active.items():
            if not any(p <= d < pe for d in days):
                continue
            first = min(days)
            s, e = at(c, p), at(c, pe)
            first_in = p <= first < pe
            row = {
                "active_at_start": int(s), "active_at_end": int(e),
                "is_new": int(not s and e and first_in), "is_reactivated": int(not s and e and not first_in),
                "is_churned": int(s and not e), "is_transient": int(not s and not e),
            }
            flags[(c, p)] = row
            f["customers_start"] += row["active_at_start"]
            f["customers_end"] += row["active_at_end"]
            f["customers_new"] += row["is_new"]
            f["customers_reactivated"] += row["is_reactivated"]
            f["customers_churned"] += row["is_churned"]
            f["customers_transient"] += row["is_transient"]
        f["churn_rate"] = f["customers_churned"] / f["customers_start"] if f["customers_start"] else None
        bridge = dict.fromkeys(["mrr_start", "mrr_new", "mrr_expansion", "mrr_contraction", "mrr_churned",
                                "mrr_reactivation", "mrr_end"], Decimal(0))
        for c in subs_by.keys() | orders_by.keys():
            v0, v1 = values[(c, p)], values[(c, pe)]
            bridge["mrr_start"] += v0
            bridge["mrr_end"] += v1
            if v0 == 0 and v1 > 0:
                bridge["mrr_new" if first_paid[c] == pe else "mrr_reactivation"] += v1
            elif v0 > 0 and v1 == 0:
                bridge["mrr_churned"] += v0
            elif v0 > 0 and v1 > v0:
                bridge["mrr_expansion"] += v1 - v0
            elif v0 > 0 and v1 < v0:
                bridge["mrr_contraction"] += v0 - v1
        f.update(bridge)
        facts[p] = f
    return facts, flags
