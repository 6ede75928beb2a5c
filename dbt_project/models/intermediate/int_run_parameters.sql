-- grain: exactly one row: the run's as-of date, the resolved churn definition and the
-- last complete period boundary. Everything downstream reads these from here.
with event_dates as (
    select max(signup_date) as d from {{ ref('stg_crm__customers') }}
    union all select max(start_date) from {{ ref('stg_crm__subscriptions') }}
    union all select max(end_date) from {{ ref('stg_crm__subscriptions') }} where end_date <= current_date
    union all select max(order_date) from {{ ref('stg_crm__orders') }}
    union all select max(occurred_on) from {{ ref('stg_crm__interactions') }}
    union all select max(opened_on) from {{ ref('stg_crm__support_tickets') }}
    union all select max(occurred_on) from {{ ref('stg_crm__loyalty_events') }}
),

resolved as (
    select
        {% if var('as_of_date') -%}
        cast('{{ var("as_of_date") }}' as date)
        {%- else -%}
        -- default: the latest date in the data, so a 1998 dataset is not read as churned in full today
        (select max(d) from event_dates)
        {%- endif %} as as_of_date,
        {% if var('churn_definition') == 'auto' -%}
        case when (select count(*) from {{ ref('stg_crm__subscriptions') }}) > 0 then 'contractual' else 'inactivity' end
        {%- elif var('churn_definition') in ['contractual', 'inactivity'] -%}
        '{{ var("churn_definition") }}'
        {%- else -%}
        {{ exceptions.raise_compiler_error("churn_definition must be auto, contractual or inactivity") }}
        {%- endif %} as churn_definition
)

select
    as_of_date,
    churn_definition,
    '{{ var("period_grain") }}' as period_grain,
    {{ var('inactivity_days') | int }} as inactivity_days,
    {{ var('grace_days') | int }} as grace_days,
    -- data is complete through as_of_date, so boundaries up to as_of_date + 1 day are known
    {{ add_days('as_of_date', 1) }} as known_through,
    {{ period_trunc(add_days('as_of_date', 1)) }} as last_complete_boundary
from resolved
