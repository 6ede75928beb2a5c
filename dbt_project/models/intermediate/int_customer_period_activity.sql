-- grain: one row per customer x period (period_grain) with at least one touch-point
-- (int_customer_activity_events, any date): the touches of the period, how many of them are
-- interactions and tickets, and the latest touch-point day. fct_customer_period reads its
-- engagement and recency windows from here instead of aggregating every raw event each run.
--
-- Incremental (daily runs): an event dated d only changes the row of the period containing d,
-- and the rows appended since the last build are dated on or after int_incremental_boundary's
-- boundary, so the periods from the one containing the boundary on are deleted (pre-hook) and
-- aggregated again from the events dated in them; a null boundary or a full refresh rebuilds all.
-- A daily run reads the date column of every event to filter it, and aggregates only the last
-- few months of events (at 1M customers ~13M of ~119M).
-- depends_on: {{ ref('int_incremental_boundary') }}
{{ config(
    materialized='incremental',
    incremental_strategy='append',
    on_schema_change='sync_all_columns',
    pre_hook="{% if is_incremental() %}delete from {{ this }} where {{ incremental_boundary() }} is null or period_start >= {{ period_trunc(incremental_boundary()) }}{% endif %}",
) }}
select
    customer_id,
    {{ period_trunc('activity_date') }} as period_start,
    count(*) as touches,
    sum(case when activity_source = 'interactions' then 1 else 0 end) as interactions_count,
    sum(case when activity_source = 'support_tickets' then 1 else 0 end) as tickets_count,
    max(activity_date) as last_activity_date
from {{ ref('int_customer_activity_events') }}
{%- if is_incremental() %}
where activity_date >= coalesce({{ period_trunc(incremental_boundary()) }}, cast('1900-01-01' as date))
{%- endif %}
group by 1, 2
