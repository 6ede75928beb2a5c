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
    # Subscriptions (end exclusive), grace 7 days, as-of 2024-04-30, month grain:
    #  A [12-01, open) 10                         B [01-15, 03-01) 20: ends on a boundary -> Feb
    #  C [11-01, 02-10) 30 + [04-05, open) 30     churn Feb, reactivated Apr
    #  D [02-01, 02-20) 10                        new and churned in Feb (transient, not in the rate)
    #  E [10-01, 01-20) 10 + [01-25, open) 25     5-day gap <= grace: one span; MRR expansion in Jan
    #  F [12-15, 03-10) 15 + [03-25, open) 15     15-day gap inside March: churn-and-return, not churned
    #  G [01-01, 03-15) 30 + [03-15, open) 0      downgrade to a 0-MRR plan: logo stays, MRR churns in Mar
    #  H [12-10, 02-05) 10 -> [02-05, 03-20) 40 -> [03-20, open) 20: upgrade (Feb), downgrade (Mar)
    #  I [01-10, 04-10) 10 overlapping [02-15, 03-01) 5: one span; churns in Apr
    #  J no subscription at all: never counted
    # Active at boundaries: Nov1 {E}; Dec1 {E,C}; Jan1 {E,C,A,F,H}; Feb1 {E,C,A,F,B,H,G,I};
    #   Mar1 {E,A,F,H,G,I}; Apr1 {E,A,F,H,G,I}; May1 {E,A,F,C,H,G}
    s = pipeline_env(CHURN_AS_OF_DATE="2024-04-30", CHURN_SOURCE="folder", CHURN_LANDING_DIR=str(DATA / "golden_contractual"))
    load_landing(s, DATA / "golden_contractual")
    dbt_build(s)
    got = _facts(s)
    #                      start new react churn end transient rate
    expected = {
        date(2023, 10, 1): (0, 1, 0, 0, 1, 0, None),
        date(2023, 11, 1): (1, 1, 0, 0, 2, 0, 0.0),
        date(2023, 12, 1): (2, 3, 0, 0, 5, 0, 0.0),
        date(2024, 1, 1): (5, 3, 0, 0, 8, 0, 0.0),
        date(2024, 2, 1): (8, 0, 0, 2, 6, 1, 0.25),
        date(2024, 3, 1): (6, 0, 0, 0, 6, 0, 0.0),
        date(2024, 4, 1): (6, 0, 1, 1, 6, 0, 1 / 6),
    }
    assert got.keys() == expected.keys()
    for k, row in expected.items():
        assert got[k][:6] == row[:6], k
        assert (got[k][6] is None) == (row[6] is None) and (row[6] is None or abs(got[k][6] - row[6]) < 1e-12), k
    # MRR at boundaries (start < b < end): Oct1 0, Nov1 10, Dec1 40, Jan1 75, Feb1 150, Mar1 130, Apr1 80, May1 100
    #                      start  new  expansion contraction churned reactivation end
    bridge = {
        date(2023, 10, 1): (0, 10, 0, 0, 0, 0, 10),
        date(2023, 11, 1): (10, 30, 0, 0, 0, 0, 40),
        date(2023, 12, 1): (40, 35, 0, 0, 0, 0, 75),      # A 10, F 15, H 10
        date(2024, 1, 1): (75, 60, 15, 0, 0, 0, 150),     # B 20, G 30, I 10 new; E 10 -> 25
        date(2024, 2, 1): (150, 0, 30, 0, 50, 0, 130),    # B, C churn; H 10 -> 40
        date(2024, 3, 1): (130, 0, 0, 20, 30, 0, 80),     # G 30 -> 0 is churn, not contraction; H 40 -> 20
        date(2024, 4, 1): (80, 0, 0, 0, 10, 30, 100),     # I churns; C 0 -> 30 is reactivation, not expansion
    }
    got_bridge = {r[0]: tuple(r[1:]) for r in query(
        s, "select period_start, mrr_start, mrr_new, mrr_expansion, mrr_contraction, mrr_churned, mrr_reactivation, "
           "mrr_end from marts.fct_churn_period")}
    assert got_bridge == bridge
    rates = {r[0]: r[1:] for r in query(s, "select period_start, grr, nrr, gross_mrr_churn_rate, net_mrr_churn_rate, "
                                           "churn_rate_monthly_equivalent, churn_rate_annualized from marts.fct_churn_period")}
    grr, nrr, gross, net, monthly, annual = rates[date(2024, 2, 1)]
    assert abs(grr - 100 / 150) < 1e-12 and abs(nrr - 130 / 150) < 1e-12
    assert abs(gross - 50 / 150) < 1e-12 and abs(net - 20 / 150) < 1e-12
    # February 2024 has 29 days: 1 - 0.75^(30.4/29) and 1 - 0.75^(365/29)
    assert abs(monthly - (1 - 0.75 ** (30.4 / 29))) < 1e-12 and abs(annual - (1 - 0.75 ** (365 / 29))) < 1e-12
    feb = dict(query(s, "select customer_id, is_churned from marts.fct_customer_period where period_start = date '2024-02-01'"))
    assert feb == {"A": 0, "B": 1, "C": 1, "D": 0, "E": 0, "F": 0, "G": 0, "H": 0, "I": 0}
    # cohorts: Dec 2023 = {A, F, H}; all three still active at May 1 -> 3 of 3; MRR 10 + 15 + 20 = 45
    cohort = query(s, "select cohort_customers, customers_retained, retention_rate, revenue_retained "
                      "from marts.fct_cohort_retention where cohort_period = date '2023-12-01' and period_start = date '2024-04-01'")
    assert cohort == [(3, 3, 1.0, 45)]
    # Jan 2024 cohort = {B, G, I}: at Mar 1 only G and I are active; at May 1 only G (MRR 0)
    jan = dict(query(s, "select periods_since_acquisition, customers_retained from marts.fct_cohort_retention "
                        "where cohort_period = date '2024-01-01'"))
    assert jan == {0: 3, 1: 2, 2: 2, 3: 1}


def test_contractual_golden_week_grain(pipeline_env):
    # Weeks start on Monday. B's last day is Thu 02-29 -> churns in the week of 02-26.
    # D's last day is Mon 02-19 -> churns in the week of 02-19 (it was active across 02-05, so
    # it is new in the week of 01-29, not transient). F's last day is Sat 03-09 -> churns in the
    # week of 03-04 and is reactivated in the week of 03-25 (starts Mon 03-25): at week grain
    # the 15-day gap is churn. E's 5-day gap stays inside the grace period.
    s = pipeline_env(CHURN_AS_OF_DATE="2024-04-30", CHURN_PERIOD_GRAIN="week")
    load_landing(s, DATA / "golden_contractual")
    dbt_build(s)
    churned = query(s, "select customer_id, period_start from marts.fct_customer_period where is_churned = 1 order by 2, 1")
    assert churned == [("C", date(2024, 2, 5)), ("D", date(2024, 2, 19)), ("B", date(2024, 2, 26)),
                       ("F", date(2024, 3, 4)), ("I", date(2024, 4, 8))]
    react = query(s, "select customer_id, period_start from marts.fct_customer_period where is_reactivated = 1 order by 2")
    assert react == [("F", date(2024, 3, 25)), ("C", date(2024, 4, 1))]
    # week of 02-19: across 02-19 {A,B,D,E,F,G,H,I} = 8; across 02-26 D is gone -> 7
    assert _facts(s)[date(2024, 2, 19)] == (8, 0, 0, 1, 7, 0, 0.125)
    # the last complete week ends Sun 04-28 (the week of 04-29 ends after the as-of date)
    assert max(_facts(s)) == date(2024, 4, 22)


def test_contractual_golden_no_grace(pipeline_env):
    # With grace 0, E's 5-day gap in January is churn-and-return within January (active at
    # both boundaries): the totals do not change, but E now has two spans.
    s = pipeline_env(CHURN_AS_OF_DATE="2024-04-30", CHURN_GRACE_DAYS="0")
    load_landing(s, DATA / "golden_contractual")
    dbt_build(s)
    assert _facts(s)[date(2024, 1, 1)] == (5, 3, 0, 0, 8, 0, 0.0)
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
    # Feb 1 active: E,C,A,F,B,H,G,I -> de {E,F,H}, us {A,B,C,G,I}; churned B,C (both us)
    assert rows == [("de", 3, 0), ("us", 5, 2)]
    # Wilson 95% interval for 2 of 5, by hand: centre (0.4 + 1.96^2/10) / (1 + 1.96^2/5), half-width
    # 1.96 * sqrt(0.4 * 0.6 / 5 + 1.96^2 / 100) / (1 + 1.96^2/5)
    z = 1.96
    centre = (0.4 + z * z / 10) / (1 + z * z / 5)
    half = z * (0.4 * 0.6 / 5 + z * z / 100) ** 0.5 / (1 + z * z / 5)
    ci = query(s, "select churn_rate_ci_low, churn_rate_ci_high from marts.fct_churn_segment_period "
                  "where segment_dimension = 'country' and segment_value = 'us' and period_start = date '2024-02-01'")
    assert abs(ci[0][0] - (centre - half)) < 1e-12 and abs(ci[0][1] - (centre + half)) < 1e-12
    assert abs(centre - half - 0.1176) < 1e-3  # the published table's value for 2/5 is 0.118 .. 0.769


def test_inactivity_golden_week_grain(pipeline_env):
    # N = 30, weeks start on Monday. Last active day = last order + 29:
    #  W 12-05 -> last day Wed 01-03: churns in the week of 01-01
    #  X 01-10, 01-25 -> last day Fri 02-23: week of 02-19
    #  Y 01-05 -> last day Sat 02-03: week of 01-29; back on Sun 03-10 (week of 03-04, active across
    #    Mon 03-11, so reactivated that week); last day Mon 04-08: churns in the week of 04-08
    #  Z 12-20 .. 03-05 -> last day Wed 04-03: week of 04-01
    s = pipeline_env(CHURN_AS_OF_DATE="2024-04-30", CHURN_INACTIVITY_DAYS="30", CHURN_PERIOD_GRAIN="week")
    load_landing(s, DATA / "golden_inactivity")
    dbt_build(s)
    churned = query(s, "select customer_id, period_start from marts.fct_customer_period where is_churned = 1 order by 2, 1")
    assert churned == [("W", date(2024, 1, 1)), ("Y", date(2024, 1, 29)), ("X", date(2024, 2, 19)),
                       ("Z", date(2024, 4, 1)), ("Y", date(2024, 4, 8))]
    assert query(s, "select customer_id, period_start from marts.fct_customer_period where is_reactivated = 1") == [
        ("Y", date(2024, 3, 4))]
    # non-contractual: the bridge runs on period revenue; week of 01-08 has X's 20.00 order (new)
    # and Z's 7.00 order on 01-15 falls in the next week
    rev = {r[0]: r[1:] for r in query(s, "select period_start, mrr_basis, mrr_new, mrr_end from marts.fct_churn_period")}
    assert rev[date(2024, 1, 8)] == ("period_revenue", 20, 20)
