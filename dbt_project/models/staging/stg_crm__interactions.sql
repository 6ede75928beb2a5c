-- grain: one row per interaction_id. raw.interactions holds each key once: the loader resolves duplicates and
-- versions, and a blocking check stops the run on conflicting keys before dbt, so no
-- de-duplicating window over the whole event table is needed here.
with keyed as (
    select *
    from {{ source('crm', 'interactions') }}
    where interaction_id is not null and customer_id is not null and occurred_at is not null
)
select
    interaction_id,
    customer_id,
    occurred_at,
    cast(occurred_at as date) as occurred_on,
    lower(trim(channel)) as channel,
    lower(trim(interaction_type)) as interaction_type
from keyed
