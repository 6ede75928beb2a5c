"""Churn counts on hand-made datasets, every number worked out by hand (see comments).

Boundary rule: a customer is active at boundary b when a span covers the day before b and
day b (span_start < b < span_end, span_end exclusive). Churned = active at the period's
start and not at its end; new/reactivated = not at the start, active at the end.
"""

from __future__ import annotations

from datetime import date

from pipeline_helpers import DATA, dbt_build, load_landing, query



COLS = "period_start, customers_start, customers_new, customers_reactivated, customers_churned, customers_end, customers_transient, churn_rate"


def _facts(settings):
    return {r[0]: r[1:] for r in query(settings, f"select {COLS} from marts.fct_churn_period order by 1")}


def test_contractual_golden(pipeline_env):
    # Subscriptions (end exclusive), grace 7 days, as-of 2024-04-30:
    #  A [2023-12-01, open)                      B [2024-01-15, 2024-03-01)  ends on a boundary -> Feb
    #  C [2023-11-01, 2024-02-10) + [2024-04-05, open)   churn Feb, reactivated Apr
    #  D [2024-02-01, 2024-02-20)  new and churned in Feb (transient, not in the rate)
    #  E [2023-10-01, 2024-01-20) + [2024-01-25, open)   5-day gap <= grace: one span, never churns
    #  F [2023-12-15, 2024-03-10) + [2024-03-25, open)   15-day gap inside March: churn-and-return, not churned
    # Active at boundaries: Nov1 {E}; Dec1 {E,C}; Jan1 {E,C,A,F}; Feb1 {E,C,A,F,B}; Mar1 {E,A,F}; Apr1 {E,A,F}; May1 {E,A,F,C}
    s = pipeline_env(CHURN_AS_OF_DATE="2024-04-30", CHURN_SOURCE="folder", CHURN_LANDING_DIR=str(DATA / "golden_contractual"))
    load_landing(s, DATA / "golden_contractual")
    dbt_build(s)
    got = _facts(s)
    #                      start new react churn end transient rate
    expected = {
        date(2023, 10, 1): (0, 1, 0, 0, 1, 0, None),
        date(2023, 11, 1): (1, 1, 0, 0, 2, 0, 0.0),
        date(2023, 12, 1): (2, 2, 0, 0, 4, 0, 0.0),
        date(2024, 1, 1): (4, 1, 0, 0, 5, 0, 0.0),
        date(2024, 2, 1): (5, 0, 0, 2, 3, 1, 0.4),
        date(2024, 3, 1): (3, 0, 0, 0, 3, 0, 0.0),
        date(2024, 4, 1): (3, 0, 1, 0, 4, 0, 0.0),
    }
    assert got == expected
    # MRR at boundaries: Feb 1 = A10 + B20 + C30 + E25 + F15 = 100; Mar 1 = A10 + E25 + F15 = 50
    mrr = dict(query(s, "select period_start, mrr_start from marts.fct_churn_period"))
    assert mrr[date(2024, 2, 1)] == 100 and mrr[date(2024, 3, 1)] == 50
    # the customer-level flags behind February
    feb = dict(query(s, "select customer_id, is_churned from marts.fct_customer_period where period_start = date '2024-02-01'"))
    assert feb == {"A": 0, "B": 1, "C": 1, "D": 0, "E": 0, "F": 0}


def test_contractual_golden_no_grace(pipeline_env):
    # With grace 0, E's 5-day gap in January is churn-and-return within January (active at
    # both boundaries): the totals do not change, but E now has two spans.
    s = pipeline_env(CHURN_AS_OF_DATE="2024-04-30", CHURN_GRACE_DAYS="0")
    load_landing(s, DATA / "golden_contractual")
    dbt_build(s)
    assert _facts(s)[date(2024, 1, 1)] == (4, 1, 0, 0, 5, 0, 0.0)
    assert query(s, "select count(*) from intermediate.int_customer_spans where customer_id = 'E'") == [(2,)]


def test_inactivity_golden(pipeline_env):
    # Orders (cancelled ones are not activity), N = 30 days, as-of 2024-04-30:
    #  W 12-05                -> [12-05, 01-04)             only order older than the window: churns in Jan
    #  X 01-10, 01-25         -> [01-10, 02-24)             (03-15 is cancelled)
    #  Y 01-05 | 03-10        -> [01-05, 02-04), [03-10, 04-09)   churn Feb, reactivated Mar, churn Apr
    #  Z 12-20,01-15,02-10,03-05 -> [12-20, 04-04)
    # Active at: Jan1 {W,Z}; Feb1 {X,Y,Z}; Mar1 {Z}; Apr1 {Y,Z}; May1 {}
    s = pipeline_env(CHURN_AS_OF_DATE="2024-04-30", CHURN_INACTIVITY_DAYS="30")
    load_landing(s, DATA / "golden_inactivity")
    dbt_build(s)
    got = _facts(s)
    expected = {
        date(2023, 12, 1): (0, 2, 0, 0, 2, 0, None),
        date(2024, 1, 1): (2, 2, 0, 1, 3, 0, 0.5),
        date(2024, 2, 1): (3, 0, 0, 2, 1, 0, 2 / 3),
        date(2024, 3, 1): (1, 0, 1, 0, 2, 0, 0.0),
        date(2024, 4, 1): (2, 0, 0, 2, 0, 0, 1.0),
    }
    assert got.keys() == expected.keys()
    for k, row in expected.items():
        assert got[k][:6] == row[:6], k
        assert (got[k][6] is None) == (row[6] is None) and (row[6] is None or abs(got[k][6] - row[6]) < 1e-12), k
    assert query(s, "select churn_definition from intermediate.int_run_parameters") == [("inactivity",)]


def test_default_as_of_is_latest_date_in_data(pipeline_env):
    # no as-of configured: the latest date in the data (X's cancelled order on 2024-03-15 is
    # still a dated record), so the last complete month is February.
    s = pipeline_env(CHURN_INACTIVITY_DAYS="30")
    load_landing(s, DATA / "golden_inactivity")
    dbt_build(s)
    assert query(s, "select as_of_date from intermediate.int_run_parameters") == [(date(2024, 3, 15),)]
    assert max(_facts(s)) == date(2024, 2, 1)


def test_segment_facts_add_up(pipeline_env):
    s = pipeline_env(CHURN_AS_OF_DATE="2024-04-30")
    load_landing(s, DATA / "golden_contractual")
    dbt_build(s)
    rows = query(s, "select segment_value, customers_start, customers_churned from marts.fct_churn_segment_period "
                    "where segment_dimension = 'country' and period_start = date '2024-02-01' order by 1")
    # Feb 1 active: E,C,A,F,B -> de {E,F}, us {A,B,C}; churned B,C (both us)
    assert rows == [("de", 2, 0), ("us", 3, 2)]
