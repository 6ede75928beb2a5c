-- grain: one row per subscription_id. end_date is exclusive (first day without service).
with ranked as (
    select *, row_number() over (partition by subscription_id order by _source_file desc, _row_number desc) as _rn
    from {{ source('crm', 'subscriptions') }}
    where subscription_id is not null and customer_id is not null and start_date is not null
)
select
    subscription_id,
    customer_id,
    lower(trim(plan)) as plan,
    start_date,
    end_date,
    -- decimals keep the MRR bridge identity exact (no float drift)
    cast(coalesce(mrr, 0) as decimal(18, 2)) as mrr
from ranked
where _rn = 1
  -- zero-length or inverted spans carry no service; the GX suite flags them on the raw batch
  and (end_date is null or end_date > start_date)
