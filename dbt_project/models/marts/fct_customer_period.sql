-- grain: one row per customer x period in which the customer was active on at least one day.
--
-- Boundary rule (the whole churn arithmetic follows from it): a customer is "active at the
-- boundary" b when a span covers both the day before b and day b (span_start < b < span_end).
--   active_at_start = active at period_start, active_at_end = active at next_period_start
--   churned      = active at start and not at end (a span ending exactly on the boundary
--                  ends in the earlier period; churn-and-return inside a period is not churn)
--   new          = not active at start, active at end, first ever span starts in the period
--   reactivated  = not active at start, active at end, an earlier span exists
--   transient    = active inside the period but at neither boundary (start-and-churn in the
--                  same period); reported separately and excluded from the churn rate
-- so customers_start + new + reactivated - churned = customers_end holds by construction.
--
-- Incremental (daily runs): only the periods whose period_end >= int_incremental_boundary.boundary
-- are recomputed; the pre-hook deletes them and delete+insert writes them back (unique_key
-- period_start). The first build, `dbt build --full-refresh` (CHURN_FULL_REFRESH=1) and a null
-- boundary rebuild every period. The result equals a full build (tests/test_incremental.py).
-- depends_on: {{ ref('int_incremental_boundary') }}
{{ config(
    materialized='incremental',
    incremental_strategy='delete+insert',
    unique_key='period_start',
    on_schema_change='sync_all_columns',
    pre_hook="{% if is_incremental() %}delete from {{ this }} where not (period_end < coalesce({{ incremental_boundary() }}, cast('1900-01-01' as date))){% endif %}",
) }}
with periods as (
    select * from {{ ref('int_periods') }}
    where {{ in_touched_periods('next_period_start') }}
),
spans as (select * from {{ ref('int_customer_spans') }}),

first_starts as (
    select customer_id, min(span_start) as first_start from spans group by customer_id
),

span_periods as (
    select
        s.customer_id,
        p.period_start,
        p.next_period_start,
        p.period_end,
        max(case when s.span_start < p.period_start and (s.span_end is null or s.span_end > p.period_start) then 1 else 0 end) as active_at_start,
        max(case when s.span_start < p.next_period_start and (s.span_end is null or s.span_end > p.next_period_start) then 1 else 0 end) as active_at_end
    from spans s
    join periods p
      on s.span_start < p.next_period_start
     and (s.span_end is null or s.span_end > p.period_start)
    group by s.customer_id, p.period_start, p.next_period_start, p.period_end
),

flags as (
    select
        o.*,
        f.first_start,
        case when f.first_start >= o.period_start and f.first_start < o.next_period_start then 1 else 0 end as first_start_in_period
    from span_periods o
    join first_starts f on f.customer_id = o.customer_id
),

mrr as (
    -- MRR of subscriptions live at a boundary, with the same boundary rule as customers
    select p.period_start,
           s.customer_id,
           sum(case when s.start_date < p.period_start and (s.end_date is null or s.end_date > p.period_start) then s.mrr else 0 end) as mrr_start,
           sum(case when s.start_date < p.next_period_start and (s.end_date is null or s.end_date > p.next_period_start) then s.mrr else 0 end) as mrr_end
    from {{ ref('stg_crm__subscriptions') }} s
    join periods p on s.start_date < p.next_period_start and (s.end_date is null or s.end_date > p.period_start)
    group by p.period_start, s.customer_id
),

orders as (
    select customer_id, {{ period_trunc('order_date') }} as period_start,
           count(*) as orders_count, sum(amount) as revenue
    from {{ ref('stg_crm__orders') }}
    where status = 'completed' and order_date >= (select min(period_start) from periods)
    group by 1, 2
),

loyalty as (
    select customer_id, {{ period_trunc('occurred_on') }} as period_start, sum(points) as loyalty_points
    from {{ ref('stg_crm__loyalty_events') }} where occurred_on >= (select min(period_start) from periods) group by 1, 2
),

spend as (
    -- value (MRR, or period revenue) at the period's opening boundary, in quartiles per period
    select customer_id, boundary as period_start,
           ntile(4) over (partition by boundary order by value, customer_id) as spend_quartile
    from {{ ref('int_customer_values') }}
    where boundary >= (select min(period_start) from periods)
),

-- Engagement and recency, at period grain: the touch-points per customer and period
-- (int_customer_period_activity, kept incrementally), and a window over the customer's periods reads
--   touches before the period = touch-points in the N whole periods before it (N =
--     engagement_window_periods(): 3 months, 13 weeks or 1 quarter, i.e. the last ~90 days)
--   last activity             = the latest touch-point before the period ends.
-- (An earlier day-exact 90-day window sorted every event with the customer's period edges:
-- ~145M rows at 1M customers, most of this model's time.) Periods before the earliest window
-- this build reads are folded into one row per customer that keeps only the latest day, so an
-- incremental build does not carry the old periods into the window.
window_start as (
    select {{ add_periods('min(period_start)', -engagement_window_periods()) }} as d from periods
),

activity as (
    -- the periods before the window start fold into the period just before it (only their
    -- latest day is read from that row: no frame of these periods reaches it)
    select a.customer_id,
           case when a.period_start < w.d then {{ add_periods('w.d', -1) }} else a.period_start end as period_start,
           sum(a.touches) as touches,
           sum(a.interactions_count) as interactions_count,
           sum(a.tickets_count) as tickets_count,
           max(a.last_activity_date) as last_activity_date
    from {{ ref('int_customer_period_activity') }} a
    cross join window_start w
    group by 1, 2
),

customer_periods as (
    -- one row per customer and period with activity or a customer-period row
    select coalesce(f.customer_id, a.customer_id) as customer_id,
           {{ period_number('coalesce(f.period_start, a.period_start)') }} as period_number,
           f.period_start as flag_period_start,
           a.touches, a.interactions_count, a.tickets_count, a.last_activity_date
    from flags f
    full outer join activity a on a.customer_id = f.customer_id and a.period_start = f.period_start
),

engagement as (
    select customer_id, flag_period_start as period_start, interactions_count, tickets_count,
           coalesce(touches_before, 0) as touches_before, last_activity_date
    from (
        select customer_id, flag_period_start, interactions_count, tickets_count,
               sum(touches) over (partition by customer_id order by period_number
                                  range between {{ engagement_window_periods() }} preceding and 1 preceding) as touches_before,
               max(last_activity_date) over (partition by customer_id order by period_number
                                             rows between unbounded preceding and current row) as last_activity_date
        from customer_periods
    ) w
    where flag_period_start is not null
)

select
    f.customer_id,
    f.period_start,
    f.period_end,
    cast(f.active_at_start as {{ dbt.type_int() }}) as active_at_start,
    cast(f.active_at_end as {{ dbt.type_int() }}) as active_at_end,
    case when f.active_at_start = 0 and f.active_at_end = 1 and f.first_start_in_period = 1 then 1 else 0 end as is_new,
    case when f.active_at_start = 0 and f.active_at_end = 1 and f.first_start_in_period = 0 then 1 else 0 end as is_reactivated,
    case when f.active_at_start = 1 and f.active_at_end = 0 then 1 else 0 end as is_churned,
    case when f.active_at_start = 0 and f.active_at_end = 0 then 1 else 0 end as is_transient,
    coalesce(m.mrr_start, 0) as mrr_start,
    coalesce(m.mrr_end, 0) as mrr_end,
    {{ days_between('f.first_start', 'f.next_period_start') }} as tenure_days,
    {{ tenure_band(days_between('f.first_start', 'f.period_start')) }} as tenure_band,
    case when sp.spend_quartile is null then 'none' else 'q' || cast(sp.spend_quartile as {{ dbt.type_string() }}) end as spend_tier,
    case
        when en.touches_before = 0 then 'none'
        when en.touches_before <= 2 then 'low'
        when en.touches_before <= 9 then 'medium'
        else 'high'
    end as engagement_tier,
    coalesce(o.orders_count, 0) as orders_count,
    coalesce(o.revenue, 0) as revenue,
    coalesce(en.interactions_count, 0) as interactions_count,
    coalesce(en.tickets_count, 0) as tickets_count,
    coalesce(l.loyalty_points, 0) as loyalty_points,
    {{ days_between('en.last_activity_date', 'f.next_period_start') }} as days_since_last_activity,
    {%- for col in customer_attribute_columns(ref('dim_customers')) %}
    c.{{ adapter.quote(col) }},
    {%- endfor %}
    f.first_start as first_active_date
from flags f
left join mrr m on m.customer_id = f.customer_id and m.period_start = f.period_start
left join orders o on o.customer_id = f.customer_id and o.period_start = f.period_start
left join loyalty l on l.customer_id = f.customer_id and l.period_start = f.period_start
left join spend sp on sp.customer_id = f.customer_id and sp.period_start = f.period_start
left join engagement en on en.customer_id = f.customer_id and en.period_start = f.period_start
left join {{ ref('dim_customers') }} c on c.customer_id = f.customer_id
