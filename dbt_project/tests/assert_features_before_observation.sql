-- leakage guard: no feature may see activity on or after its observation date
select * from {{ ref('ml_customer_features') }}
where days_since_last_activity < 1 or days_since_last_order < 1 or days_since_last_interaction < 1
