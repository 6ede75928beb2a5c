-- grain: one row per complete period.
-- Logo churn: churn_rate = customers churned in the period / customers active at its start.
-- Customers who start and churn inside the same period (customers_transient) are not in the
-- rate (ChartMogul's rule); see fct_customer_period for the boundary rule.
-- MRR bridge: see int_mrr_movements; for non-contractual sources the "MRR" columns are
-- period revenue (mrr_basis = 'period_revenue').
with cp as (select * from {{ ref('fct_customer_period') }}),

logos as (
    select
        period_start,
        cast(sum(active_at_start) as {{ dbt.type_bigint() }}) as customers_start,
        cast(sum(is_new) as {{ dbt.type_bigint() }}) as customers_new,
        cast(sum(is_reactivated) as {{ dbt.type_bigint() }}) as customers_reactivated,
        cast(sum(is_churned) as {{ dbt.type_bigint() }}) as customers_churned,
        cast(sum(active_at_end) as {{ dbt.type_bigint() }}) as customers_end,
        cast(sum(is_transient) as {{ dbt.type_bigint() }}) as customers_transient,
        sum(revenue) as revenue
    from cp
    group by period_start
),

bridge as (
    select
        period_start,
        sum(mrr_start) as mrr_start,
        sum(mrr_new) as mrr_new,
        sum(mrr_expansion) as mrr_expansion,
        sum(mrr_contraction) as mrr_contraction,
        sum(mrr_churned) as mrr_churned,
        sum(mrr_reactivation) as mrr_reactivation,
        sum(mrr_end) as mrr_end
    from {{ ref('int_mrr_movements') }}
    group by period_start
),

joined as (
    select
        p.period_start,
        p.period_end,
        {{ days_between('p.period_start', 'p.next_period_start') }} as days_in_period,
        coalesce(l.customers_start, 0) as customers_start,
        coalesce(l.customers_new, 0) as customers_new,
        coalesce(l.customers_reactivated, 0) as customers_reactivated,
        coalesce(l.customers_churned, 0) as customers_churned,
        coalesce(l.customers_end, 0) as customers_end,
        coalesce(l.customers_transient, 0) as customers_transient,
        case when coalesce(l.customers_start, 0) = 0 then null
             else cast(l.customers_churned as {{ type_double() }}) / l.customers_start end as churn_rate,
        coalesce(b.mrr_start, 0) as mrr_start,
        coalesce(b.mrr_new, 0) as mrr_new,
        coalesce(b.mrr_expansion, 0) as mrr_expansion,
        coalesce(b.mrr_contraction, 0) as mrr_contraction,
        coalesce(b.mrr_churned, 0) as mrr_churned,
        coalesce(b.mrr_reactivation, 0) as mrr_reactivation,
        coalesce(b.mrr_end, 0) as mrr_end,
        coalesce(l.revenue, 0) as revenue
    from {{ ref('int_periods') }} p
    left join logos l on l.period_start = p.period_start
    left join bridge b on b.period_start = p.period_start
)

select
    period_start,
    period_end,
    days_in_period,
    (select churn_definition from {{ ref('int_run_parameters') }}) as churn_definition,
    customers_start,
    customers_new,
    customers_reactivated,
    customers_churned,
    customers_end,
    customers_transient,
    churn_rate,
    -- compounding conversions of the period rate: 1 - (1 - c)^(days / days_in_period)
    1 - power(1 - churn_rate, 30.4 / days_in_period) as churn_rate_monthly_equivalent,
    1 - power(1 - churn_rate, 365.0 / days_in_period) as churn_rate_annualized,
    case when (select churn_definition from {{ ref('int_run_parameters') }}) = 'contractual' then 'mrr' else 'period_revenue' end as mrr_basis,
    mrr_start,
    mrr_new,
    mrr_expansion,
    mrr_contraction,
    mrr_churned,
    mrr_reactivation,
    mrr_end,
    case when mrr_start > 0 then cast(mrr_churned + mrr_contraction as {{ type_double() }}) / mrr_start end as gross_mrr_churn_rate,
    case when mrr_start > 0 then cast(mrr_churned + mrr_contraction - mrr_expansion - mrr_reactivation as {{ type_double() }}) / mrr_start end as net_mrr_churn_rate,
    -- retention of the MRR that existed at the start (new and reactivated MRR excluded)
    case when mrr_start > 0 then cast(mrr_start - mrr_churned - mrr_contraction as {{ type_double() }}) / mrr_start end as grr,
    case when mrr_start > 0 then cast(mrr_start - mrr_churned - mrr_contraction + mrr_expansion as {{ type_double() }}) / mrr_start end as nrr,
    revenue
from joined
