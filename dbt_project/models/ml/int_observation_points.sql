-- grain: one row per customer x observation date.
-- Training points: every customer active at the start of a complete period, observed at
-- period_start, label = churned in that period (fight-churn's setup, no lead time yet).
-- Scoring points: every customer active after the as-of date, observed at as_of + 1 day,
-- label null. Features only use data dated strictly before observation_date.
select customer_id, period_start as observation_date, is_churned as label
from {{ ref('fct_customer_period') }}
where active_at_start = 1
union all
select s.customer_id, p.known_through as observation_date, cast(null as {{ dbt.type_int() }}) as label
from {{ ref('int_customer_spans') }} s
cross join {{ ref('int_run_parameters') }} p
where s.span_end is null and s.span_start < p.known_through
