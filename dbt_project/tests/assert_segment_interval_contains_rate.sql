-- the Wilson interval always contains the observed rate
select * from {{ ref('fct_churn_segment_period') }}
where customers_start > 0 and not (churn_rate_ci_low <= churn_rate and churn_rate <= churn_rate_ci_high)
