-- grain: one row per customer x active span under the configured churn definition.
-- span_start: first active day; span_end: first inactive day (exclusive), null = open.
with params as (select * from {{ ref('int_run_parameters') }})

select c.customer_id, c.span_number, c.span_start, c.span_end, 'contractual' as churn_definition
from {{ ref('int_contract_spans') }} c
where (select churn_definition from params) = 'contractual'
union all
select i.customer_id, i.span_number, i.span_start, i.span_end, 'inactivity'
from {{ ref('int_inactivity_spans') }} i
where (select churn_definition from params) = 'inactivity'
