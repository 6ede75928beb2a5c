-- grain: one row per event_id. raw.loyalty_events holds each key once: the loader resolves duplicates and
-- versions, and a blocking check stops the run on conflicting keys before dbt, so no
-- de-duplicating window over the whole event table is needed here.
with keyed as (
    select *
    from {{ source('crm', 'loyalty_events') }}
    where event_id is not null and customer_id is not null and occurred_at is not null
)
select
    event_id,
    customer_id,
    occurred_at,
    cast(occurred_at as date) as occurred_on,
    lower(trim(event_type)) as event_type,
    coalesce(points, 0) as points,
    lower(trim(tier)) as tier
from keyed
