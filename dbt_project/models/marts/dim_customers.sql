-- grain: one row per customer: the current version from the SCD2 snapshot, plus the
-- customer's first active day under the churn definition (null = never active).
select
    s.customer_id,
    s.signup_date,
    s.birth_year,
    {%- for col in customer_attribute_columns(ref('customers_snapshot')) %}
    s.{{ adapter.quote(col) }},
    {%- endfor %}
    f.first_active_date,
    s.dbt_valid_from as attributes_valid_from
from {{ ref('customers_snapshot') }} s
left join (
    select customer_id, min(span_start) as first_active_date
    from {{ ref('int_customer_spans') }}
    group by customer_id
) f on f.customer_id = s.customer_id
where s.dbt_valid_to is null
