-- grain: one row per interaction_id.
with ranked as (
    select *, row_number() over (partition by interaction_id order by _source_file desc, _row_number desc) as _rn
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
from ranked
where _rn = 1
