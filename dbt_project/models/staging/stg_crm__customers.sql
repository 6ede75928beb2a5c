-- grain: one row per customer_id.
-- Duplicates (re-deliveries / corrections) resolve to the latest version by updated_at,
-- then by load order (later file, later row). Lineage columns are dropped here so the
-- SCD2 snapshot only records real attribute changes.
with ranked as (
    select
        *,
        row_number() over (
            partition by customer_id
            order by updated_at desc nulls last, _source_file desc, _row_number desc
        ) as _version_rank
    from {{ source('crm', 'customers') }}
    where customer_id is not null
)

select
    customer_id,
    signup_date,
    {%- for col in adapter.get_columns_in_relation(source('crm', 'customers')) if execute %}
    {%- set name = col.name | lower %}
    {%- if name not in ['customer_id', 'signup_date', 'birth_year', 'updated_at', '_source_file', '_row_number', '_loaded_at'] %}
    lower(trim(cast({{ adapter.quote(name) }} as {{ dbt.type_string() }}))) as {{ adapter.quote(name) }},
    {%- endif %}
    {%- endfor %}
    birth_year,
    updated_at
from ranked
where _version_rank = 1
