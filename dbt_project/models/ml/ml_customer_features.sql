-- grain: one row per customer x observation date (see int_observation_points).
-- Every feature is computed from rows dated strictly before observation_date, in SQL, so
-- event tables never reach pandas and appending later rows cannot change a feature.
--
-- How (for scale): every event table is read once and aggregated to customer x day first;
-- no observation is joined to raw events, and no event table is scanned twice.
-- * Interactions (tens of days with events per customer and year), training points: running totals; the
--   observation points are added to the customer's day series as marker rows at the
--   observation date o and at o - 30 and o - 90 days, sorted before the events of their day,
--   so a running total read at a marker on day x is the total over the days before x, and
--   "interactions in [o - 30, o)" = total before o - total before o - 30. One sort, linear;
--   days before the customer's earliest window are folded into one row first. Scoring points
--   (one date per customer) aggregate the customer's earlier interactions directly.
-- * Orders, tickets and loyalty events (a few days with events per customer) join the
--   observation points to the customer's day aggregates (d < o); per customer that is at most
--   observation dates x event days, far fewer rows than one per raw event.
-- * Subscriptions and spans (about one row per customer) are joined directly.
-- * Last activity = the latest of the per-source last dates (the sources of
--   int_customer_activity_events), instead of a join with that table.
-- The values are identical to the earlier formulation that joined every observation to every
-- earlier raw event (tests/ml/test_feature_windows.py compares the two on generated data).
with obs as (select * from {{ ref('int_observation_points') }}),

points as (select distinct customer_id, observation_date from obs),

-- labelled (training) points: many observation dates per customer; scoring points (label null):
-- one per customer, all at as_of + 1 day
train_points as (select distinct customer_id, observation_date from obs where label is not null),

score_points as (select distinct customer_id, observation_date from obs where label is null),

-- completed orders per customer and day
ord_days as (
    select customer_id, order_date as d, count(*) as n, sum(amount) as amt
    from {{ ref('stg_crm__orders') }}
    where status = 'completed'
    group by customer_id, order_date
),

ord as (
    select o.customer_id, o.observation_date,
        sum(case when r.d >= {{ add_days('o.observation_date', -30) }} then r.n else 0 end) as orders_30d,
        sum(case when r.d >= {{ add_days('o.observation_date', -90) }} then r.n else 0 end) as orders_90d,
        cast(sum(r.n) as bigint) as orders_total,
        sum(case when r.d >= {{ add_days('o.observation_date', -90) }} then r.amt else 0 end) as revenue_90d,
        sum(case when r.d < {{ add_days('o.observation_date', -90) }} and r.d >= {{ add_days('o.observation_date', -180) }} then r.amt else 0 end) as revenue_prev_90d,
        sum(r.amt) as revenue_total,
        min(r.d) as first_order_date,
        max(r.d) as last_order_date
    from points o
    join ord_days r on r.customer_id = o.customer_id and r.d < o.observation_date
    group by o.customer_id, o.observation_date
),

-- Interactions, training points: per customer and day from 90 days before the customer's
-- earliest training date (the earliest day any of its windows reads), earlier days folded into
-- one row per customer that keeps their count and latest day, and days from its latest training
-- date on dropped; customers without a training point are left out. So the sort below holds only
-- the windows of the sampled customers (at 1M customers ~6M rows), not their whole history. Marker rows: back = days before the observation date; null on event
-- rows, which sort after the markers of their day.
int_cut as (
    select customer_id, {{ add_days('min(observation_date)', -90) }} as cut, max(observation_date) as hi
    from train_points
    group by customer_id
),

int_series as (
    select i.customer_id,
           case when i.occurred_on >= c.cut then i.occurred_on else {{ add_days('c.cut', -1) }} end as d,
           count(*) as n, max(i.occurred_on) as last_d, cast(null as integer) as back
    from {{ ref('stg_crm__interactions') }} i
    -- days on or after the customer's last training date are in no window
    join int_cut c on c.customer_id = i.customer_id and i.occurred_on < c.hi
    group by i.customer_id, case when i.occurred_on >= c.cut then i.occurred_on else {{ add_days('c.cut', -1) }} end
    union all
    select customer_id, observation_date, null, null, 0 from train_points
    union all
    select customer_id, {{ add_days('observation_date', -30) }}, null, null, 30 from train_points
    union all
    select customer_id, {{ add_days('observation_date', -90) }}, null, null, 90 from train_points
),

int_run as (
    select customer_id, d, back,
        sum(n) over w as n_before,
        max(last_d) over w as last_d
    from int_series
    window w as (partition by customer_id order by d, back nulls last rows between unbounded preceding and current row)
),

inter_train as (
    select customer_id, observation_date,
        cast(max(case when back = 0 then n_before end) - coalesce(max(case when back = 30 then n_before end), 0) as hugeint) as interactions_30d,
        cast(max(case when back = 0 then n_before end) - coalesce(max(case when back = 90 then n_before end), 0) as hugeint) as interactions_90d,
        max(case when back = 0 then last_d end) as last_interaction_date
    from (
        select customer_id, {{ add_days('d', 'back') }} as observation_date, back, n_before, last_d
        from int_run
        where back is not null
    ) m
    group by customer_id, observation_date
    -- only customers with an interaction before the observation date (as an inner join gives)
    having max(case when back = 0 then n_before end) > 0
),

-- Interactions, scoring points: every scoring point is at the same date (as_of + 1 day; see
-- int_observation_points and the test on ml_scoring_set), so each customer's earlier interactions
-- are aggregated against that one date, with no join to the events and no sort (at 1M customers
-- ~1 s, against ~10 s through the series above).
score_date as (
    select max(observation_date) as d, {{ add_days('max(observation_date)', -30) }} as d30,
        {{ add_days('max(observation_date)', -90) }} as d90
    from score_points
),

inter_score as (
    select p.customer_id, p.observation_date, a.interactions_30d, a.interactions_90d, a.last_interaction_date
    from (
        -- the dates as scalar subqueries: constants for the scan, not a join with every event
        select customer_id,
            cast(sum(case when occurred_on >= (select d30 from score_date) then 1 else 0 end) as hugeint) as interactions_30d,
            cast(sum(case when occurred_on >= (select d90 from score_date) then 1 else 0 end) as hugeint) as interactions_90d,
            max(occurred_on) as last_interaction_date
        from {{ ref('stg_crm__interactions') }}
        where occurred_on < (select d from score_date)
        group by customer_id
    ) a
    join score_points p on p.customer_id = a.customer_id and p.observation_date = (select d from score_date)
),

inter as (
    select * from inter_train
    union all
    select * from inter_score
),

-- tickets per customer and day they were opened, and per first day on which both the opening
-- and the resolution are in the past (so "resolved before the observation date" = before it)
tick_days as (
    select customer_id, opened_on as d, count(*) as n, cast(null as bigint) as res_n,
        cast(null as bigint) as res_days, cast(null as double) as sat_sum, cast(null as bigint) as sat_n
    from {{ ref('stg_crm__support_tickets') }}
    group by customer_id, opened_on
    union all
    select customer_id, greatest(opened_on, resolved_on), null, count(*),
        sum({{ days_between('opened_on', 'resolved_on') }}), sum(satisfaction_score), count(satisfaction_score)
    from {{ ref('stg_crm__support_tickets') }}
    where resolved_on is not null
    group by customer_id, greatest(opened_on, resolved_on)
),

tick as (
    select o.customer_id, o.observation_date,
        sum(case when t.n is not null and t.d >= {{ add_days('o.observation_date', -90) }} then t.n else 0 end) as tickets_90d,
        cast(sum(t.n) as bigint) as tickets_total,
        -- a ticket resolved on or after the observation date was still open then
        sum(coalesce(t.n, 0)) - sum(coalesce(t.res_n, 0)) as open_tickets,
        cast(sum(t.res_days) as double) / sum(t.res_n) as avg_resolution_days,
        sum(t.sat_sum) / sum(t.sat_n) as avg_satisfaction,
        max(case when t.n is not null then t.d end) as last_ticket_date
    from points o
    join tick_days t on t.customer_id = o.customer_id and t.d < o.observation_date
    group by o.customer_id, o.observation_date
    having sum(t.n) > 0
),

loyal_days as (
    select customer_id, occurred_on as d, count(*) as n,
        max(case when event_type = 'enroll' then 1 else 0 end) as enrolled,
        sum(points) as points,
        sum(case when event_type = 'redeem' then 1 else 0 end) as redemptions
    from {{ ref('stg_crm__loyalty_events') }}
    group by customer_id, occurred_on
),

loyal as (
    select o.customer_id, o.observation_date,
        max(l.enrolled) as loyalty_enrolled,
        sum(l.points) as loyalty_points_balance,
        sum(l.redemptions) as loyalty_redemptions,
        max(l.d) as last_loyalty_date
    from points o
    join loyal_days l on l.customer_id = o.customer_id and l.d < o.observation_date
    group by o.customer_id, o.observation_date
),

subs as (
    select o.customer_id, o.observation_date,
        sum(case when s.end_date is null or s.end_date > o.observation_date then s.mrr else 0 end) as mrr_current,
        -- MRR that was live 90 days before the observation date (known then, so no leak)
        sum(case when s.start_date < {{ add_days('o.observation_date', -90) }}
                  and (s.end_date is null or s.end_date > {{ add_days('o.observation_date', -90) }}) then s.mrr else 0 end) as mrr_90d_ago,
        count(*) as subscriptions_total,
        max(s.start_date) as last_subscription_start,
        max(case when s.end_date is null or s.end_date > o.observation_date then s.plan end) as current_plan
    from points o
    join {{ ref('stg_crm__subscriptions') }} s
      on s.customer_id = o.customer_id and s.start_date < o.observation_date
    group by o.customer_id, o.observation_date
),

spans as (
    select o.customer_id, o.observation_date,
        min(sp.span_start) as first_active_date,
        count(*) as spans_started
    from points o
    join {{ ref('int_customer_spans') }} sp
      on sp.customer_id = o.customer_id and sp.span_start < o.observation_date
    group by o.customer_id, o.observation_date
)

select
    o.customer_id,
    o.observation_date,
    o.label,
    -- labelled points before int_observation_points sampled them (the underscore keeps it out of the features)
    o.rows_available as _rows_available,
    {{ days_between('sp.first_active_date', 'o.observation_date') }} as tenure_days,
    {{ tenure_band(days_between('sp.first_active_date', 'o.observation_date')) }} as tenure_band,
    coalesce(sp.spans_started, 0) - 1 as reactivations,
    -- the last touch-point of any kind (the sources of int_customer_activity_events)
    {{ days_between('greatest(ord.last_order_date, inter.last_interaction_date, tick.last_ticket_date, loyal.last_loyalty_date, subs.last_subscription_start)', 'o.observation_date') }} as days_since_last_activity,
    -- purchases (RFM)
    coalesce(ord.orders_30d, 0) as orders_30d,
    coalesce(ord.orders_90d, 0) as orders_90d,
    coalesce(ord.orders_total, 0) as orders_total,
    coalesce(ord.revenue_90d, 0) as revenue_90d,
    coalesce(ord.revenue_total, 0) as revenue_total,
    coalesce(ord.revenue_90d, 0) - coalesce(ord.revenue_prev_90d, 0) as revenue_trend_90d,
    case when ord.orders_total > 0 then ord.revenue_total / ord.orders_total end as avg_order_value,
    {{ days_between('ord.last_order_date', 'o.observation_date') }} as days_since_last_order,
    -- purchase cadence: last 30 days against the 90-day monthly average (1 = steady, < 1 = slowing)
    case when ord.orders_90d > 0 then 3.0 * ord.orders_30d / ord.orders_90d end as orders_trend,
    -- mean days between orders, and how overdue the next order is against that rhythm
    case when ord.orders_total > 1
         then 1.0 * {{ days_between('ord.first_order_date', 'ord.last_order_date') }} / (ord.orders_total - 1) end as avg_days_between_orders,
    case when ord.orders_total > 1 and {{ days_between('ord.first_order_date', 'ord.last_order_date') }} > 0
         then 1.0 * {{ days_between('ord.last_order_date', 'o.observation_date') }} * (ord.orders_total - 1)
              / {{ days_between('ord.first_order_date', 'ord.last_order_date') }} end as order_gap_ratio,
    -- engagement
    coalesce(inter.interactions_30d, 0) as interactions_30d,
    coalesce(inter.interactions_90d, 0) as interactions_90d,
    -- trend: last 30 days against the 90-day monthly average (1 = steady, < 1 = falling)
    case when inter.interactions_90d > 0 then 3.0 * inter.interactions_30d / inter.interactions_90d end as interactions_trend,
    {{ days_between('inter.last_interaction_date', 'o.observation_date') }} as days_since_last_interaction,
    -- service
    coalesce(tick.tickets_90d, 0) as tickets_90d,
    coalesce(tick.tickets_total, 0) as tickets_total,
    coalesce(tick.open_tickets, 0) as open_tickets,
    tick.avg_resolution_days,
    tick.avg_satisfaction,
    -- loyalty
    coalesce(loyal.loyalty_enrolled, 0) as loyalty_enrolled,
    coalesce(loyal.loyalty_points_balance, 0) as loyalty_points_balance,
    coalesce(loyal.loyalty_redemptions, 0) as loyalty_redemptions,
    -- contract
    subs.mrr_current,
    -- up- or downgrade over the last 90 days (contractual sources)
    subs.mrr_current - subs.mrr_90d_ago as mrr_change_90d,
    subs.current_plan,
    coalesce(subs.subscriptions_total, 0) as subscriptions_total,
    -- per-unit ratios
    case when {{ days_between('sp.first_active_date', 'o.observation_date') }} > 0
         then 30.4 * coalesce(tick.tickets_total, 0) / {{ days_between('sp.first_active_date', 'o.observation_date') }} end as tickets_per_month,
    case when {{ days_between('sp.first_active_date', 'o.observation_date') }} > 0
         then 30.4 * coalesce(ord.revenue_total, 0) / {{ days_between('sp.first_active_date', 'o.observation_date') }} end as revenue_per_active_month,
    -- the value a churn would cost per month: MRR, else the recent monthly revenue
    coalesce(subs.mrr_current, coalesce(ord.revenue_90d, 0) / 3.0) as monthly_value,
    -- demographics / attributes (current version; see README on SCD2 and leakage)
    {%- for col in customer_attribute_columns(ref('dim_customers')) %}
    c.{{ adapter.quote(col) }},
    {%- endfor %}
    c.birth_year
from obs o
left join ord on ord.customer_id = o.customer_id and ord.observation_date = o.observation_date
left join inter on inter.customer_id = o.customer_id and inter.observation_date = o.observation_date
left join tick on tick.customer_id = o.customer_id and tick.observation_date = o.observation_date
left join loyal on loyal.customer_id = o.customer_id and loyal.observation_date = o.observation_date
left join spans sp on sp.customer_id = o.customer_id and sp.observation_date = o.observation_date
left join subs on subs.customer_id = o.customer_id and subs.observation_date = o.observation_date
left join {{ ref('dim_customers') }} c on c.customer_id = o.customer_id
