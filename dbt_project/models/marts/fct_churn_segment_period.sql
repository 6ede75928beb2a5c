-- grain: one row per period x segment dimension x segment value.
-- Dimensions: the customer attribute columns (var segment_dimensions narrows them) plus the
-- behavioural tenure band at period start. Same counting rules as fct_churn_period.
{%- set dims = customer_attribute_columns(ref('dim_customers'), for_segments=true) | list %}
{%- do dims.extend(['tenure_band', 'spend_tier', 'engagement_tier']) %}
with cp as (select * from {{ ref('fct_customer_period') }}),

long as (
    {%- for dim in dims %}
    select period_start, period_end, '{{ dim }}' as segment_dimension,
           coalesce(cast({{ adapter.quote(dim) }} as {{ dbt.type_string() }}), '(missing)') as segment_value,
           active_at_start, is_new, is_reactivated, is_churned, active_at_end, is_transient
    from cp
    {% if not loop.last %}union all{% endif %}
    {%- endfor %}
),

agg as (
    select
        period_start, period_end, segment_dimension, segment_value,
        cast(sum(active_at_start) as {{ dbt.type_bigint() }}) as customers_start,
        cast(sum(is_new) as {{ dbt.type_bigint() }}) as customers_new,
        cast(sum(is_reactivated) as {{ dbt.type_bigint() }}) as customers_reactivated,
        cast(sum(is_churned) as {{ dbt.type_bigint() }}) as customers_churned,
        cast(sum(active_at_end) as {{ dbt.type_bigint() }}) as customers_end,
        cast(sum(is_transient) as {{ dbt.type_bigint() }}) as customers_transient
    from long
    group by period_start, period_end, segment_dimension, segment_value
),

rated as (
    select
        *,
        case when customers_start = 0 then null
             else cast(customers_churned as {{ type_double() }}) / customers_start end as churn_rate
    from agg
)

select
    *,
    -- Wilson score interval, 95% (z = 1.96): honest for small segments and rates near 0 or 1
    -- exact at the ends: the formula gives 0 (or 1) there, up to float rounding
    case when customers_start > 0 and customers_churned = 0 then 0
         when customers_start > 0 then greatest(0,
        (churn_rate + 1.96 * 1.96 / (2 * customers_start)
         - 1.96 * sqrt(churn_rate * (1 - churn_rate) / customers_start + 1.96 * 1.96 / (4.0 * customers_start * customers_start)))
        / (1 + 1.96 * 1.96 / customers_start))
    end as churn_rate_ci_low,
    case when customers_start > 0 and customers_churned = customers_start then 1
         when customers_start > 0 then least(1,
        (churn_rate + 1.96 * 1.96 / (2 * customers_start)
         + 1.96 * sqrt(churn_rate * (1 - churn_rate) / customers_start + 1.96 * 1.96 / (4.0 * customers_start * customers_start)))
        / (1 + 1.96 * 1.96 / customers_start))
    end as churn_rate_ci_high,
    case when customers_start < {{ var('segment_min_customers') | int }} then 1 else 0 end as is_small_segment
from rated
