-- grain: one row per customer x period in which the customer had value at either boundary.
-- MRR bridge per customer, classified on value alone:
--   0 -> positive: new if this is the customer's first positive boundary, else reactivation
--   positive -> 0: churned (never contraction, even when the logo stays, e.g. a 0-MRR plan)
--   positive -> positive: expansion or contraction by the difference
-- so mrr_end - mrr_start = new + expansion + reactivation - contraction - churned exactly.
--
-- Incremental (daily runs) like fct_customer_period: only the periods whose period_end >=
-- int_incremental_boundary.boundary are recomputed (the pre-hook deletes them); a null boundary
-- or a full refresh rebuilds every period. first_paid always reads every boundary.
-- depends_on: {{ ref('int_incremental_boundary') }}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='sync_all_columns',
    pre_hook="{% if is_incremental() %}delete from {{ this }} where {{ incremental_boundary() }} is null or period_start >= (select min(period_start) from {{ ref('int_periods') }} where {{ in_touched_periods('next_period_start') }}){% endif %}",
) }}
with values_at as (select * from {{ ref('int_customer_values') }}),
periods as (select * from {{ ref('int_periods') }} where {{ in_touched_periods('next_period_start') }}),

first_paid as (
    select customer_id, min(boundary) as first_paid_boundary from values_at group by customer_id
),

pairs as (
    -- a boundary is the start of one period and the end of the one before: two equi-joins
    -- (one join on "start or end" cannot use a hash join and was most of this model's time)
    select period_start, next_period_start, customer_id, sum(mrr_start) as mrr_start, sum(mrr_end) as mrr_end
    from (
        select p.period_start, p.next_period_start, v.customer_id, v.value as mrr_start, 0 as mrr_end
        from periods p join values_at v on v.boundary = p.period_start
        union all
        select p.period_start, p.next_period_start, v.customer_id, 0, v.value
        from periods p join values_at v on v.boundary = p.next_period_start
    ) b
    group by period_start, next_period_start, customer_id
)

select
    x.customer_id,
    x.period_start,
    x.mrr_start,
    x.mrr_end,
    case when x.mrr_start = 0 and x.mrr_end > 0 and f.first_paid_boundary = x.next_period_start then x.mrr_end else 0 end as mrr_new,
    case when x.mrr_start = 0 and x.mrr_end > 0 and f.first_paid_boundary < x.next_period_start then x.mrr_end else 0 end as mrr_reactivation,
    case when x.mrr_start > 0 and x.mrr_end > x.mrr_start then x.mrr_end - x.mrr_start else 0 end as mrr_expansion,
    case when x.mrr_start > 0 and x.mrr_end > 0 and x.mrr_end < x.mrr_start then x.mrr_start - x.mrr_end else 0 end as mrr_contraction,
    case when x.mrr_start > 0 and x.mrr_end = 0 then x.mrr_start else 0 end as mrr_churned
from pairs x
join first_paid f on f.customer_id = x.customer_id
