-- grain: one row per incremental model (today fct_customer_period; the list comes from the graph):
-- what its build recomputes this run.
--
-- boundary = the earliest day that data loaded since the model's last successful build can
-- change; the model recomputes every period (or day) on or after it (null = everything: first
-- build, a raw table rebuilt in full, or changed parameters). With d = the earliest event date of
-- the rows appended since (raw _loaded_at after the model's stored watermark):
--   boundary = least(d, previous as-of date, this as-of date[, the partition's first day]) - inactivity_days - grace_days - 1
-- An event on day d changes activity spans from d on (a span may now merge across a gap of up
-- to inactivity_days / grace_days before d), engagement and recency windows only look forward
-- from it, and a moving as-of date changes the spans still open at it and the latest periods;
-- the margin keeps the rule safe for both churn definitions. Each model keeps its own state, so a
-- model that was not selected or failed looks back further on its next build, never less far.
-- A view, so it is always computed from the raw tables and the state as they are now (a build of
-- one model alone never reads a stale boundary); on-run-end records it in the state.
{{ config(materialized='view') }}
{#- dim_customers' attribute columns, read from the snapshot they come from, so this view stays
    upstream of the marts that use it -#}
{%- set attrs = customer_attribute_columns(ref('customers_snapshot')) %}
{#- the project's code: a changed model or snapshot makes every incremental model recompute all
    (macros are not covered: after changing one, build once with CHURN_FULL_REFRESH=1) -#}
{#- a partitioned Dagster run (orchestration/partitions.py) names its first data day: periods that
    data from that day on can change are recomputed whatever was loaded (a backfill) -#}
{%- set recompute_from = env_var('CHURN_RECOMPUTE_FROM', '') | trim %}
{%- if recompute_from and not modules.re.fullmatch('[0-9]{4}-[0-9]{2}-[0-9]{2}', recompute_from) %}
    {{ exceptions.raise_compiler_error("CHURN_RECOMPUTE_FROM=" ~ recompute_from ~ " is not a date; use YYYY-MM-DD or leave it empty") }}
{%- endif %}
{%- set checksums = [] %}
{%- if execute %}
    {%- for node in graph.nodes.values() | sort(attribute='unique_id') %}
        {%- if node.resource_type in ['model', 'snapshot', 'seed'] %}{%- do checksums.append(node.unique_id ~ '=' ~ node.checksum.checksum) %}{%- endif %}
    {%- endfor %}
{%- endif %}
with params as (select * from {{ ref('int_run_parameters') }}),

current_params as (
    select
        p.churn_definition || '|' || p.period_grain || '|' || cast(p.inactivity_days as {{ dbt.type_string() }}) || '|'
        || cast(p.grace_days as {{ dbt.type_string() }})
        || '|{{ var("activity_sources") | join(",") }}|{{ (var("segment_dimensions") or []) | join(",") }}'
        || '|{{ var("segment_max_values") }}|{{ attrs | join(",") }}|code {{ local_md5(checksums | join(",")) }}' as params
    from params p
),

loaded as (
    -- the latest load the raw tables have seen: appended rows carry their load time in _loaded_at,
    -- a table rebuilt in full records it in raw.landing_state (written by the Dagster loader)
    select max(t) as watermark from (
        select max(_loaded_at) as t from {{ source('crm', 'customers') }}
        union all select max(_loaded_at) from {{ source('crm', 'subscriptions') }}
        union all select max(_loaded_at) from {{ source('crm', 'orders') }}
        union all select max(_loaded_at) from {{ source('crm', 'interactions') }}
        union all select max(_loaded_at) from {{ source('crm', 'support_tickets') }}
        union all select max(_loaded_at) from {{ source('crm', 'loyalty_events') }}
        union all select max(full_built_at) from raw.landing_state
    )
)

{%- for m in incremental_model_names() %}
{{ "," }}
state_{{ loop.index }} as (
    -- meta.incremental_state is created by on-run-start and written by on-run-end (macros/incremental.sql)
    select watermark, as_of_date, params from meta.incremental_state where model = '{{ m }}'
),

full_rebuilds_{{ loop.index }} as (
    select count(*) as n from raw.landing_state
    where full_built_at > (select watermark from state_{{ loop.index }}) or full_built_at is null
),

new_days_{{ loop.index }} as (
    -- the earliest event day among the rows appended since the model's last build
    {%- set wm = "(select watermark from state_" ~ loop.index ~ ")" %}
    select min(d) as d from (
        select min(signup_date) as d from {{ source('crm', 'customers') }} where _loaded_at > {{ wm }}
        union all select min(least(start_date, end_date)) from {{ source('crm', 'subscriptions') }}
            where _loaded_at > {{ wm }}
        union all select min(order_date) from {{ source('crm', 'orders') }} where _loaded_at > {{ wm }}
        union all select min(cast(occurred_at as date)) from {{ source('crm', 'interactions') }}
            where _loaded_at > {{ wm }}
        union all select min(cast(least(opened_at, resolved_at) as date)) from {{ source('crm', 'support_tickets') }}
            where _loaded_at > {{ wm }}
        union all select min(cast(occurred_at as date)) from {{ source('crm', 'loyalty_events') }}
            where _loaded_at > {{ wm }}
    ) x
)
{%- endfor %}

{% for m in incremental_model_names() %}
select
    '{{ m }}' as model,
    case
        when (select count(*) from state_{{ loop.index }}) = 0 then null
        when (select params from state_{{ loop.index }}) is distinct from (select params from current_params) then null
        when (select n from full_rebuilds_{{ loop.index }}) > 0 then null
        else {{ add_days(
            'least(coalesce((select d from new_days_' ~ loop.index ~ '), p.as_of_date), coalesce((select as_of_date from state_' ~ loop.index ~ '), p.as_of_date), p.as_of_date'
            ~ (", cast('" ~ recompute_from ~ "' as date)" if recompute_from else '') ~ ')',
            '-(p.inactivity_days + p.grace_days + 1)') }}
    end as boundary,
    (select watermark from loaded) as watermark,
    (select watermark from state_{{ loop.index }}) as previous_watermark,
    p.as_of_date,
    (select params from current_params) as params
from params p
{% if not loop.last %}union all{% endif %}
{%- endfor %}
