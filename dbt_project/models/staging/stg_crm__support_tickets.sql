-- grain: one row per ticket_id. raw.support_tickets holds each key once: the loader resolves duplicates and
-- versions, and a blocking check stops the run on conflicting keys before dbt, so no
-- de-duplicating window over the whole event table is needed here.
with keyed as (
    select *
    from {{ source('crm', 'support_tickets') }}
    where ticket_id is not null and customer_id is not null and opened_at is not null
)
select
    ticket_id,
    customer_id,
    opened_at,
    cast(opened_at as date) as opened_on,
    resolved_at,
    cast(resolved_at as date) as resolved_on,
    lower(trim(priority)) as priority,
    lower(trim(category)) as category,
    satisfaction_score
from keyed
