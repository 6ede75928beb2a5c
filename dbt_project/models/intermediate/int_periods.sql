-- grain: one row per complete reporting period, from the period of the first span start
-- to the last period that ends on or before the as-of date + 1 day.
-- period_start inclusive, next_period_start exclusive, period_end = last day (inclusive).
with params as (select * from {{ ref('int_run_parameters') }}),

bounds as (
    select
        {{ period_trunc('(select min(span_start) from ' ~ ref('int_customer_spans') ~ ')') }} as first_start,
        p.last_complete_boundary
    from params p
),

spine as (
    {{ period_spine('(select first_start from bounds)', '(select last_complete_boundary from bounds)') }}
)

select
    period_start,
    {{ next_period('period_start') }} as next_period_start,
    {{ add_days(next_period('period_start'), -1) }} as period_end
from spine
where {{ next_period('period_start') }} <= (select last_complete_boundary from bounds)
