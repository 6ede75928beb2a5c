-- each period's opening MRR is the previous period's closing MRR
with p as (
    select period_start, mrr_start, lag(mrr_end) over (order by period_start) as prev_end
    from {{ ref('fct_churn_period') }}
)
select * from p where prev_end is not null and prev_end <> mrr_start
