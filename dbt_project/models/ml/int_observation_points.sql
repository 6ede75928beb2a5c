-- grain: one row per customer x observation date.
-- Training points: every customer active at the start of a complete period P, observed at
-- P's period_start. The label looks `label_lead_periods` periods ahead (dbt var, default 0):
--   lead 0: label = churned in P itself (the period starting at the observation date);
--   lead L: label = churned in the period L periods after P (fight-churn's lead time: the
--           prediction arrives L periods before the churn, leaving time to act). Only customers
--           still (or again) active at the start of that target period are kept: the others have
--           no outcome there (they churned earlier, which an earlier observation labels).
--   The target period must be complete, so the last L periods get no labelled points.
-- Scoring points: every customer active after the as-of date, observed at as_of + 1 day,
-- label null. Features only use data dated strictly before observation_date.
-- Sampling (for scale): above var('max_train_rows') labelled points (CHURN_MAX_TRAIN_ROWS), the
-- training points are a seeded sample, stratified by label x observation date: every stratum
-- keeps the same fraction f = max_train_rows / available, rounded up, taking the points with the
-- smallest hash(customer_id, observation_date, seed). Drawn here, so features are computed only
-- for the points the model trains on (equal fractions keep every date's churn rate: no
-- re-weighting). rows_available = the labelled points before sampling (null on scoring points).
{%- set lead = var('label_lead_periods', 0) %}
{%- if lead is none or (lead | string) | trim == '' or not ((lead | string) | trim).isdigit() %}
{{ exceptions.raise_compiler_error("label_lead_periods must be a whole number >= 0, got " ~ lead) }}
{%- endif %}
{%- set lead = lead | int %}
{%- set max_rows = var('max_train_rows', 0) | int %}
with {% if lead == 0 -%}
labelled as (
select customer_id, period_start as observation_date, is_churned as label
from {{ ref('fct_customer_period') }}
where active_at_start = 1
),
{%- else -%}
periods as (
    select period_start, row_number() over (order by period_start) as period_index
    from {{ ref('int_periods') }}
),

customer_periods as (
    select f.customer_id, f.period_start, f.active_at_start, f.is_churned, p.period_index
    from {{ ref('fct_customer_period') }} f
    join periods p on p.period_start = f.period_start
),

labelled as (
select o.customer_id, o.period_start as observation_date, t.is_churned as label
from customer_periods o
join customer_periods t
  on t.customer_id = o.customer_id
 and t.period_index = o.period_index + {{ lead }}
where o.active_at_start = 1 and t.active_at_start = 1
),
{%- endif %}

counted as (
    select customer_id, observation_date, label,
        count(*) over () as rows_available
        {%- if max_rows > 0 %},
        {{ dbt.hash(dbt.concat(['customer_id', "'|'", 'cast(observation_date as ' ~ dbt.type_string() ~ ')', "'|" ~ (var('seed', 42) | int) ~ "'"])) }} as h
        {%- endif %}
    from labelled
)
{%- if max_rows > 0 %},

-- The rule above, without sorting every labelled point: a stratum keeps its k smallest hashes,
-- so it is enough to rank the points whose first two hex digits are at most those of the k-th
-- smallest, found from per-digit counts (k = the stratum's quota, at most its size).
quota as (
    select label, observation_date, max(rows_available) as rows_available,
        least(count(*), ceil(count(*) * {{ max_rows }} / cast(max(rows_available) as {{ type_double() }}))) as k
    from counted
    group by label, observation_date
),

prefix_counts as (
    select label, observation_date, substr(h, 1, 2) as prefix, count(*) as n
    from counted
    group by label, observation_date, substr(h, 1, 2)
),

cutoff as (
    select c.label, c.observation_date, min(c.prefix) as last_prefix
    from (
        select label, observation_date, prefix,
            sum(n) over (partition by label, observation_date order by prefix rows between unbounded preceding and current row) as n_upto
        from prefix_counts
    ) c
    join quota q on q.label = c.label and q.observation_date = c.observation_date
    where c.n_upto >= q.k
    group by c.label, c.observation_date
),

ranked as (
    select c.customer_id, c.observation_date, c.label, c.rows_available, q.k,
        row_number() over (partition by c.label, c.observation_date order by c.h, c.customer_id) as stratum_rank
    from counted c
    join cutoff u on u.label = c.label and u.observation_date = c.observation_date
    join quota q on q.label = c.label and q.observation_date = c.observation_date
    where substr(c.h, 1, 2) <= u.last_prefix
)
{%- endif %}

select customer_id, observation_date, label, rows_available
{%- if max_rows > 0 %}
from ranked
where stratum_rank <= k
{%- else %}
from counted
{%- endif %}
union all
select s.customer_id, p.known_through as observation_date, cast(null as {{ dbt.type_int() }}) as label,
    cast(null as {{ dbt.type_bigint() }}) as rows_available
from {{ ref('int_customer_spans') }} s
cross join {{ ref('int_run_parameters') }} p
where s.span_end is null and s.span_start < p.known_through
