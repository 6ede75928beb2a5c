-- grain: one row per order_id.
with ranked as (
    select *, row_number() over (partition by order_id order by _source_file desc, _row_number desc) as _rn
    from {{ source('crm', 'orders') }}
    where order_id is not null and customer_id is not null and order_date is not null
)
select
    order_id,
    customer_id,
    order_date,
    cast(amount as decimal(18, 2)) as amount,
    coalesce(lower(trim(status)), 'completed') as status
from ranked
where _rn = 1
