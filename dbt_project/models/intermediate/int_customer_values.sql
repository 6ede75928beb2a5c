-- grain: one row per customer x period boundary at which the customer has positive value.
-- value = MRR of subscriptions live across the boundary (contractual: start < b < end,
-- the same rule as for customers), or, for non-contractual sources, the completed-order
-- revenue of the period that ends at the boundary (period revenue in place of MRR).
--
-- Incremental (daily runs): the value at boundary b depends on subscriptions live across b, or
-- on the orders of the period ending at b, so rows appended since the last build (dated on or
-- after int_incremental_boundary's boundary) change only boundaries after it: the boundaries from
-- the period start containing it on are deleted (pre-hook) and computed again; a null boundary
-- or a full refresh rebuilds all.
-- depends_on: {{ ref('int_incremental_boundary') }}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='sync_all_columns',
    pre_hook="{% if is_incremental() %}delete from {{ this }} where {{ incremental_boundary() }} is null or boundary >= {{ period_trunc(incremental_boundary()) }}{% endif %}",
) }}
{%- set from_boundary -%}
    {%- if is_incremental() -%}coalesce({{ period_trunc(incremental_boundary()) }}, cast('1900-01-01' as date)){%- else -%}cast('1900-01-01' as date){%- endif -%}
{%- endset %}
with params as (select * from {{ ref('int_run_parameters') }}),
periods as (select * from {{ ref('int_periods') }}),

boundaries as (
    select boundary from (
        select period_start as boundary from periods
        union
        select next_period_start from periods
    ) b
    where boundary >= {{ from_boundary }}
),

mrr as (
    select s.customer_id, b.boundary, sum(s.mrr) as value
    from {{ ref('stg_crm__subscriptions') }} s
    join boundaries b
      on s.start_date < b.boundary and (s.end_date is null or s.end_date > b.boundary)
    cross join params p
    where s.start_date <= p.as_of_date
    group by s.customer_id, b.boundary
),

revenue as (
    select o.customer_id, pe.next_period_start as boundary, sum(o.amount) as value
    from {{ ref('stg_crm__orders') }} o
    join periods pe on o.order_date >= pe.period_start and o.order_date < pe.next_period_start
    where o.status = 'completed' and pe.next_period_start >= {{ from_boundary }}
    group by o.customer_id, pe.next_period_start
)

select customer_id, boundary, value, 'mrr' as value_basis
from mrr
where value > 0 and (select churn_definition from params) = 'contractual'
union all
select customer_id, boundary, value, 'period_revenue'
from revenue
where value > 0 and (select churn_definition from params) = 'inactivity'
