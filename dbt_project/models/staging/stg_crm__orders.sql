-- grain: one row per order_id. raw.orders holds each key once: the loader resolves duplicates and
-- versions, and a blocking check stops the run on conflicting keys before dbt, so no
-- de-duplicating window over the whole event table is needed here.
with keyed as (
    select *
    from {{ source('crm', 'orders') }}
    where order_id is not null and customer_id is not null and order_date is not null
)
select
    order_id,
    customer_id,
    order_date,
    cast(amount as decimal(18, 2)) as amount,
    coalesce(lower(trim(status)), 'completed') as status
from keyed
