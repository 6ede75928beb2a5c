-- grain: one row per ticket_id.
with ranked as (
    select *, row_number() over (partition by ticket_id order by _source_file desc, _row_number desc) as _rn
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
from ranked
where _rn = 1
