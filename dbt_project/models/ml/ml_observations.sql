-- grain: one row per customer x period start at which the customer was active (labelled).
select * from {{ ref('ml_customer_features') }} where label is not null
