-- grain: one row per event_id.
with ranked as (
    select *, row_number() over (partition by event_id order by _source_file desc, _row_number desc) as _rn
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
from ranked
where _rn = 1
