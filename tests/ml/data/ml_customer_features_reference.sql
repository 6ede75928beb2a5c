-- Reference formulation of ml_customer_features (the model before it was rewritten for scale,
-- compiled; attribute columns left out): every observation joined to every earlier raw event.
-- It is quadratic per customer and too slow at scale, but obviously right; tests/ml/test_leakage.py
-- checks that the dbt model gives the same values on the leakage test's warehouses.
-- grain: one row per customer x observation date (see int_observation_points).
-- Every feature is computed from rows dated strictly before observation_date, in SQL, so
-- event tables never reach pandas and appending later rows cannot change a feature.
with obs as (select * from "ml"."int_observation_points"),

ord as (
    select o.customer_id, o.observation_date,
        sum(case when r.order_date >= cast(

    (o.observation_date + cast(-30 as bigint) * interval 1 day) as date) then 1 else 0 end) as orders_30d,
        sum(case when r.order_date >= cast(

    (o.observation_date + cast(-90 as bigint) * interval 1 day) as date) then 1 else 0 end) as orders_90d,
        count(r.order_id) as orders_total,
        sum(case when r.order_date >= cast(

    (o.observation_date + cast(-90 as bigint) * interval 1 day) as date) then r.amount else 0 end) as revenue_90d,
        sum(case when r.order_date < cast(

    (o.observation_date + cast(-90 as bigint) * interval 1 day) as date) and r.order_date >= cast(

    (o.observation_date + cast(-180 as bigint) * interval 1 day) as date) then r.amount else 0 end) as revenue_prev_90d,
        sum(r.amount) as revenue_total,
        min(r.order_date) as first_order_date,
        max(r.order_date) as last_order_date
    from obs o
    join "staging"."stg_crm__orders" r
      on r.customer_id = o.customer_id and r.order_date < o.observation_date and r.status = 'completed'
    group by o.customer_id, o.observation_date
),

inter as (
    select o.customer_id, o.observation_date,
        sum(case when i.occurred_on >= cast(

    (o.observation_date + cast(-30 as bigint) * interval 1 day) as date) then 1 else 0 end) as interactions_30d,
        sum(case when i.occurred_on >= cast(

    (o.observation_date + cast(-90 as bigint) * interval 1 day) as date) then 1 else 0 end) as interactions_90d,
        max(i.occurred_on) as last_interaction_date
    from obs o
    join "staging"."stg_crm__interactions" i
      on i.customer_id = o.customer_id and i.occurred_on < o.observation_date
    group by o.customer_id, o.observation_date
),

tick as (
    select o.customer_id, o.observation_date,
        sum(case when t.opened_on >= cast(

    (o.observation_date + cast(-90 as bigint) * interval 1 day) as date) then 1 else 0 end) as tickets_90d,
        count(*) as tickets_total,
        -- a ticket resolved on or after the observation date was still open then
        sum(case when t.resolved_on is null or t.resolved_on >= o.observation_date then 1 else 0 end) as open_tickets,
        avg(case when t.resolved_on < o.observation_date then 
        (date_diff('day', t.opened_on::timestamp, t.resolved_on::timestamp ))
     end) as avg_resolution_days,
        avg(case when t.resolved_on < o.observation_date then t.satisfaction_score end) as avg_satisfaction
    from obs o
    join "staging"."stg_crm__support_tickets" t
      on t.customer_id = o.customer_id and t.opened_on < o.observation_date
    group by o.customer_id, o.observation_date
),

loyal as (
    select o.customer_id, o.observation_date,
        max(case when l.event_type = 'enroll' then 1 else 0 end) as loyalty_enrolled,
        sum(l.points) as loyalty_points_balance,
        sum(case when l.event_type = 'redeem' then 1 else 0 end) as loyalty_redemptions
    from obs o
    join "staging"."stg_crm__loyalty_events" l
      on l.customer_id = o.customer_id and l.occurred_on < o.observation_date
    group by o.customer_id, o.observation_date
),

subs as (
    select o.customer_id, o.observation_date,
        sum(case when s.end_date is null or s.end_date > o.observation_date then s.mrr else 0 end) as mrr_current,
        -- MRR that was live 90 days before the observation date (known then, so no leak)
        sum(case when s.start_date < cast(

    (o.observation_date + cast(-90 as bigint) * interval 1 day) as date)
                  and (s.end_date is null or s.end_date > cast(

    (o.observation_date + cast(-90 as bigint) * interval 1 day) as date)) then s.mrr else 0 end) as mrr_90d_ago,
        count(*) as subscriptions_total,
        max(case when s.end_date is null or s.end_date > o.observation_date then s.plan end) as current_plan
    from obs o
    join "staging"."stg_crm__subscriptions" s
      on s.customer_id = o.customer_id and s.start_date < o.observation_date
    group by o.customer_id, o.observation_date
),

spans as (
    select o.customer_id, o.observation_date,
        min(sp.span_start) as first_active_date,
        count(*) as spans_started
    from obs o
    join "intermediate"."int_customer_spans" sp
      on sp.customer_id = o.customer_id and sp.span_start < o.observation_date
    group by o.customer_id, o.observation_date
),

last_act as (
    select o.customer_id, o.observation_date, max(e.activity_date) as last_activity_date
    from obs o
    join "intermediate"."int_customer_activity_events" e
      on e.customer_id = o.customer_id and e.activity_date < o.observation_date
    group by o.customer_id, o.observation_date
)

select
    o.customer_id,
    o.observation_date,
    o.label,
    
        (date_diff('day', sp.first_active_date::timestamp, o.observation_date::timestamp ))
     as tenure_days,
    case
        when 
        (date_diff('day', sp.first_active_date::timestamp, o.observation_date::timestamp ))
     is null then null
        when 
        (date_diff('day', sp.first_active_date::timestamp, o.observation_date::timestamp ))
     < 90 then '0-3m'
        when 
        (date_diff('day', sp.first_active_date::timestamp, o.observation_date::timestamp ))
     < 365 then '3-12m'
        when 
        (date_diff('day', sp.first_active_date::timestamp, o.observation_date::timestamp ))
     < 730 then '12-24m'
        else '24m+'
    end as tenure_band,
    coalesce(sp.spans_started, 0) - 1 as reactivations,
    
        (date_diff('day', la.last_activity_date::timestamp, o.observation_date::timestamp ))
     as days_since_last_activity,
    -- purchases (RFM)
    coalesce(ord.orders_30d, 0) as orders_30d,
    coalesce(ord.orders_90d, 0) as orders_90d,
    coalesce(ord.orders_total, 0) as orders_total,
    coalesce(ord.revenue_90d, 0) as revenue_90d,
    coalesce(ord.revenue_total, 0) as revenue_total,
    coalesce(ord.revenue_90d, 0) - coalesce(ord.revenue_prev_90d, 0) as revenue_trend_90d,
    case when ord.orders_total > 0 then ord.revenue_total / ord.orders_total end as avg_order_value,
    
        (date_diff('day', ord.last_order_date::timestamp, o.observation_date::timestamp ))
     as days_since_last_order,
    -- purchase cadence: last 30 days against the 90-day monthly average (1 = steady, < 1 = slowing)
    case when ord.orders_90d > 0 then 3.0 * ord.orders_30d / ord.orders_90d end as orders_trend,
    -- mean days between orders, and how overdue the next order is against that rhythm
    case when ord.orders_total > 1
         then 1.0 * 
        (date_diff('day', ord.first_order_date::timestamp, ord.last_order_date::timestamp ))
     / (ord.orders_total - 1) end as avg_days_between_orders,
    case when ord.orders_total > 1 and 
        (date_diff('day', ord.first_order_date::timestamp, ord.last_order_date::timestamp ))
     > 0
         then 1.0 * 
        (date_diff('day', ord.last_order_date::timestamp, o.observation_date::timestamp ))
     * (ord.orders_total - 1)
              / 
        (date_diff('day', ord.first_order_date::timestamp, ord.last_order_date::timestamp ))
     end as order_gap_ratio,
    -- engagement
    coalesce(inter.interactions_30d, 0) as interactions_30d,
    coalesce(inter.interactions_90d, 0) as interactions_90d,
    -- trend: last 30 days against the 90-day monthly average (1 = steady, < 1 = falling)
    case when inter.interactions_90d > 0 then 3.0 * inter.interactions_30d / inter.interactions_90d end as interactions_trend,
    
        (date_diff('day', inter.last_interaction_date::timestamp, o.observation_date::timestamp ))
     as days_since_last_interaction,
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
    case when 
        (date_diff('day', sp.first_active_date::timestamp, o.observation_date::timestamp ))
     > 0
         then 30.4 * coalesce(tick.tickets_total, 0) / 
        (date_diff('day', sp.first_active_date::timestamp, o.observation_date::timestamp ))
     end as tickets_per_month,
    case when 
        (date_diff('day', sp.first_active_date::timestamp, o.observation_date::timestamp ))
     > 0
         then 30.4 * coalesce(ord.revenue_total, 0) / 
        (date_diff('day', sp.first_active_date::timestamp, o.observation_date::timestamp ))
     end as revenue_per_active_month,
    -- the value a churn would cost per month: MRR, else the recent monthly revenue
    coalesce(subs.mrr_current, coalesce(ord.revenue_90d, 0) / 3.0) as monthly_value,
    -- demographics / attributes (current version; see README on SCD2 and leakage)
    c.birth_year
from obs o
left join spans sp on sp.customer_id = o.customer_id and sp.observation_date = o.observation_date
left join last_act la on la.customer_id = o.customer_id and la.observation_date = o.observation_date
left join ord on ord.customer_id = o.customer_id and ord.observation_date = o.observation_date
left join inter on inter.customer_id = o.customer_id and inter.observation_date = o.observation_date
left join tick on tick.customer_id = o.customer_id and tick.observation_date = o.observation_date
left join loyal on loyal.customer_id = o.customer_id and loyal.observation_date = o.observation_date
left join subs on subs.customer_id = o.customer_id and subs.observation_date = o.observation_date
left join "marts"."dim_customers" c on c.customer_id = o.customer_id