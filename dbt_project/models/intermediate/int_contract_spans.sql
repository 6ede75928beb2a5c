-- grain: one row per customer x merged contract span.
-- Subscriptions of one customer merge into one span when the gap between them is
-- <= grace_days, so a re-subscription within the grace period is not churn.
-- span_end is exclusive (first day without service); null = still open at the as-of date.
with params as (select * from {{ ref('int_run_parameters') }}),

subs as (
    select
        s.customer_id,
        s.start_date,
        -- an end after the as-of date has not happened yet: the span is open
        case when s.end_date is null or s.end_date > p.known_through then cast('9000-01-01' as date) else s.end_date end as end_date
    from {{ ref('stg_crm__subscriptions') }} s
    cross join params p
    where s.start_date <= p.as_of_date
      -- only built out under this definition (int_customer_spans reads one of the two span models)
      and p.churn_definition = 'contractual'
),

ordered as (
    select
        customer_id, start_date, end_date,
        max(end_date) over (
            partition by customer_id order by start_date, end_date
            rows between unbounded preceding and 1 preceding
        ) as prev_max_end
    from subs
),

flagged as (
    select
        o.*,
        case when prev_max_end is null or start_date > {{ add_days('prev_max_end', 'p.grace_days') }} then 1 else 0 end as starts_island
    from ordered o cross join params p
),

islands as (
    select *, sum(starts_island) over (partition by customer_id order by start_date, end_date rows unbounded preceding) as span_number
    from flagged
)

select
    customer_id,
    span_number,
    min(start_date) as span_start,
    case when max(end_date) = cast('9000-01-01' as date) then null else max(end_date) end as span_end
from islands
group by customer_id, span_number
