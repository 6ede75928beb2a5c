-- grain: one row per acquisition cohort x period from the cohort's period onwards.
-- cohort = the period of the customer's first active day. A cohort customer is retained in a
-- period when active at its closing boundary (so periods_since_acquisition = 0 already
-- drops customers who churned in their first period). Revenue retained is the cohort's
-- value (MRR, or period revenue for non-contractual sources) at that boundary.
with periods as (
    select period_start, next_period_start, row_number() over (order by period_start) as period_index
    from {{ ref('int_periods') }}
),

customers as (
    select customer_id, {{ period_trunc('min(span_start)') }} as cohort_period
    from {{ ref('int_customer_spans') }}
    group by customer_id
),

cohorts as (
    select c.cohort_period, p.period_index as cohort_index, count(*) as cohort_customers
    from customers c
    join periods p on p.period_start = c.cohort_period
    group by c.cohort_period, p.period_index
),

retained as (
    select c.cohort_period, cp.period_start, count(*) as customers_retained
    from {{ ref('fct_customer_period') }} cp
    join customers c on c.customer_id = cp.customer_id
    where cp.active_at_end = 1
    group by c.cohort_period, cp.period_start
),

revenue as (
    select c.cohort_period, p.period_start, sum(v.value) as revenue_retained
    from {{ ref('int_customer_values') }} v
    join customers c on c.customer_id = v.customer_id
    join periods p on p.next_period_start = v.boundary
    group by c.cohort_period, p.period_start
),

grid as (
    select
        co.cohort_period,
        p.period_start,
        p.period_index - co.cohort_index as periods_since_acquisition,
        co.cohort_customers,
        coalesce(r.customers_retained, 0) as customers_retained,
        coalesce(rv.revenue_retained, 0) as revenue_retained
    from cohorts co
    join periods p on p.period_index >= co.cohort_index
    left join retained r on r.cohort_period = co.cohort_period and r.period_start = p.period_start
    left join revenue rv on rv.cohort_period = co.cohort_period and rv.period_start = p.period_start
)

select
    g.cohort_period,
    g.period_start,
    g.periods_since_acquisition,
    g.cohort_customers,
    g.customers_retained,
    cast(g.customers_retained as {{ type_double() }}) / g.cohort_customers as retention_rate,
    g.revenue_retained,
    case when g0.revenue_retained > 0 then cast(g.revenue_retained as {{ type_double() }}) / g0.revenue_retained end as revenue_retention_rate
from grid g
join grid g0 on g0.cohort_period = g.cohort_period and g0.periods_since_acquisition = 0
