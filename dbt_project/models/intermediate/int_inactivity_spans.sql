-- grain: one row per customer x activity span (non-contractual churn).
-- A customer is active on day t when they had activity on one of the N days up to t,
-- so activity on day d keeps them active through d + N - 1 and span_end (exclusive)
-- is the last activity + N days. Activity before the previous span ends extends it.
with params as (select * from {{ ref('int_run_parameters') }}),

days as (
    select distinct e.customer_id, e.activity_date
    from {{ ref('int_customer_activity_events') }} e
    cross join params p
    where e.activity_source in ({% for s in var('activity_sources') %}'{{ s }}'{% if not loop.last %}, {% endif %}{% endfor %})
      and e.activity_date <= p.as_of_date
      -- only built out under this definition (int_customer_spans reads one of the two span models)
      and p.churn_definition = 'inactivity'
),

ordered as (
    select
        customer_id, activity_date,
        lag(activity_date) over (partition by customer_id order by activity_date) as prev_date
    from days
),

islands as (
    select
        o.customer_id, o.activity_date,
        sum(case when prev_date is null or activity_date > {{ add_days('prev_date', 'p.inactivity_days') }} then 1 else 0 end)
            over (partition by o.customer_id order by o.activity_date rows unbounded preceding) as span_number
    from ordered o cross join params p
),

spans as (
    select customer_id, span_number, min(activity_date) as span_start, max(activity_date) as last_activity
    from islands
    group by customer_id, span_number
)

select
    s.customer_id,
    s.span_number,
    s.span_start,
    case
        when {{ add_days('s.last_activity', 'p.inactivity_days') }} > p.known_through then null
        else {{ add_days('s.last_activity', 'p.inactivity_days') }}
    end as span_end
from spans s
cross join params p
