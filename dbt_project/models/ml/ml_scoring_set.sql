-- grain: one row per currently active customer, observed the day after the as-of date.
select * from {{ ref('ml_customer_features') }} where label is null
