-- each period starts with exactly the customers the previous one ended with
with p as (
    select period_start, customers_start, customers_end,
           lag(customers_end) over (order by period_start) as prev_end
    from {{ ref('fct_churn_period') }}
)
select * from p where prev_end is not null and prev_end <> customers_start
