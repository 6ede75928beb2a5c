-- mrr_end - mrr_start = new + expansion + reactivation - contraction - churned, exactly, every period
select *
from {{ ref('fct_churn_period') }}
where mrr_end - mrr_start <> mrr_new + mrr_expansion + mrr_reactivation - mrr_contraction - mrr_churned
