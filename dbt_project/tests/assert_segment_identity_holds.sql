-- the identity holds per segment too, and each dimension's segments add up to the total
select s.*
from {{ ref('fct_churn_segment_period') }} s
where customers_start + customers_new + customers_reactivated - customers_churned <> customers_end
union all
select s.*
from {{ ref('fct_churn_segment_period') }} s
join (
    select period_start, segment_dimension, sum(customers_start) as total_start, sum(customers_churned) as total_churned
    from {{ ref('fct_churn_segment_period') }} group by 1, 2
) d on d.period_start = s.period_start and d.segment_dimension = s.segment_dimension
join {{ ref('fct_churn_period') }} f on f.period_start = s.period_start
where d.total_start <> f.customers_start or d.total_churned <> f.customers_churned
