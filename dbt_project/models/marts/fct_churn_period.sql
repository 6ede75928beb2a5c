-- grain: one row per complete period.
-- churn_rate = customers churned in the period / customers active at its start.
-- Customers who start and churn inside the same period (customers_transient) are not in
-- the rate (ChartMogul's rule); see fct_customer_period for the boundary rule.
with cp as (select * from {{ ref('fct_customer_period') }}),

agg as (
    select
        period_start,
        cast(sum(active_at_start) as {{ dbt.type_bigint() }}) as customers_start,
        cast(sum(is_new) as {{ dbt.type_bigint() }}) as customers_new,
        cast(sum(is_reactivated) as {{ dbt.type_bigint() }}) as customers_reactivated,
        cast(sum(is_churned) as {{ dbt.type_bigint() }}) as customers_churned,
        cast(sum(active_at_end) as {{ dbt.type_bigint() }}) as customers_end,
        cast(sum(is_transient) as {{ dbt.type_bigint() }}) as customers_transient,
        sum(mrr_start) as mrr_start,
        sum(mrr_end) as mrr_end,
        sum(revenue) as revenue
    from cp
    group by period_start
)

select
    p.period_start,
    p.period_end,
    (select churn_definition from {{ ref('int_run_parameters') }}) as churn_definition,
    coalesce(a.customers_start, 0) as customers_start,
    coalesce(a.customers_new, 0) as customers_new,
    coalesce(a.customers_reactivated, 0) as customers_reactivated,
    coalesce(a.customers_churned, 0) as customers_churned,
    coalesce(a.customers_end, 0) as customers_end,
    coalesce(a.customers_transient, 0) as customers_transient,
    case when coalesce(a.customers_start, 0) = 0 then null
         else cast(a.customers_churned as {{ type_double() }}) / a.customers_start end as churn_rate,
    coalesce(a.mrr_start, 0) as mrr_start,
    coalesce(a.mrr_end, 0) as mrr_end,
    coalesce(a.revenue, 0) as revenue
from {{ ref('int_periods') }} p
left join agg a on a.period_start = p.period_start
