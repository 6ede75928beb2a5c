-- customers_start + customers_new + customers_reactivated - customers_churned = customers_end, every period
select *
from {{ ref('fct_churn_period') }}
where customers_start + customers_new + customers_reactivated - customers_churned <> customers_end
