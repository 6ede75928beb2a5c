{#- Portable date helpers. Everything returns DATE so comparisons never mix DATE and TIMESTAMP. -#}

{% macro add_days(date_expr, n) -%}
    cast({{ dbt.dateadd('day', n, date_expr) }} as date)
{%- endmacro %}

{% macro days_between(start_expr, end_expr) -%}
    {{ dbt.datediff(start_expr, end_expr, 'day') }}
{%- endmacro %}

{% macro period_trunc(date_expr) -%}
    {#- weeks start on Monday (ISO) on DuckDB, Postgres and Spark -#}
    cast({{ dbt.date_trunc(var('period_grain'), date_expr) }} as date)
{%- endmacro %}

{% macro next_period(date_expr) -%}
    {%- set grain = var('period_grain') -%}
    {%- if grain == 'week' -%}
        cast({{ dbt.dateadd('day', 7, date_expr) }} as date)
    {%- elif grain == 'month' -%}
        cast({{ dbt.dateadd('month', 1, date_expr) }} as date)
    {%- elif grain == 'quarter' -%}
        {#- DuckDB's dateadd has no quarter; three months is the same everywhere -#}
        cast({{ dbt.dateadd('month', 3, date_expr) }} as date)
    {%- else -%}
        {{ exceptions.raise_compiler_error("period_grain must be week, month or quarter, got " ~ grain) }}
    {%- endif -%}
{%- endmacro %}

{% macro grain_interval() -%}
    {%- set grain = var('period_grain') -%}
    {%- if grain == 'week' -%}interval '7 days'{%- elif grain == 'month' -%}interval '1 month'{%- else -%}interval '3 months'{%- endif -%}
{%- endmacro %}

{#- A period start shifted by n whole periods (n a number). -#}
{% macro add_periods(date_expr, n) -%}
    {%- set grain = var('period_grain') -%}
    {%- if grain == 'week' -%}
        cast({{ dbt.dateadd('day', 7 * n, date_expr) }} as date)
    {%- elif grain == 'month' -%}
        cast({{ dbt.dateadd('month', n, date_expr) }} as date)
    {%- else -%}
        cast({{ dbt.dateadd('month', 3 * n, date_expr) }} as date)
    {%- endif -%}
{%- endmacro %}

{#- Consecutive integers for consecutive period starts (for window frames over periods).
    Weeks count from Monday 2000-01-03; the differences are exact multiples. -#}
{% macro period_number(date_expr) -%}
    {%- set grain = var('period_grain') -%}
    {%- if grain == 'week' -%}
        cast({{ dbt.datediff("cast('2000-01-03' as date)", date_expr, 'day') }} / 7 as {{ dbt.type_int() }})
    {%- elif grain == 'month' -%}
        cast({{ dbt.datediff("cast('2000-01-01' as date)", date_expr, 'month') }} as {{ dbt.type_int() }})
    {%- else -%}
        cast({{ dbt.datediff("cast('2000-01-01' as date)", date_expr, 'month') }} / 3 as {{ dbt.type_int() }})
    {%- endif -%}
{%- endmacro %}

{#- The engagement window of the period facts in whole periods: the last ~90 days
    (3 months, 13 weeks = 91 days, or 1 quarter). -#}
{% macro engagement_window_periods() -%}
    {%- set grain = var('period_grain') -%}
    {{ return(13 if grain == 'week' else 3 if grain == 'month' else 1) }}
{%- endmacro %}

{#- One row per period start between two DATE expressions (inclusive). -#}
{% macro period_spine(start_expr, end_expr) -%}
    {{ return(adapter.dispatch('period_spine')(start_expr, end_expr)) }}
{%- endmacro %}

{% macro duckdb__period_spine(start_expr, end_expr) -%}
    select cast(unnest(generate_series(cast({{ start_expr }} as timestamp), cast({{ end_expr }} as timestamp), {{ grain_interval() }})) as date) as period_start
{%- endmacro %}

{% macro postgres__period_spine(start_expr, end_expr) -%}
    select cast(g as date) as period_start
    from generate_series(cast({{ start_expr }} as timestamp), cast({{ end_expr }} as timestamp), {{ grain_interval() }}) as g
{%- endmacro %}

{% macro default__period_spine(start_expr, end_expr) -%}
    {#- portable fallback: numbers 0..9999 from a cross join, then keep those within range -#}
    with digits as (
        select 0 as d union all select 1 union all select 2 union all select 3 union all select 4
        union all select 5 union all select 6 union all select 7 union all select 8 union all select 9
    ), numbers as (
        select a.d + 10 * b.d + 100 * c.d + 1000 * e.d as n
        from digits a cross join digits b cross join digits c cross join digits e
    ), starts as (
        select
            {% if var('period_grain') == 'week' -%}
            cast({{ dbt.dateadd('day', 'n * 7', start_expr) }} as date)
            {%- elif var('period_grain') == 'month' -%}
            cast({{ dbt.dateadd('month', 'n', start_expr) }} as date)
            {%- else -%}
            cast({{ dbt.dateadd('month', 'n * 3', start_expr) }} as date)
            {%- endif %} as period_start
        from numbers
    )
    select period_start from starts where period_start <= cast({{ end_expr }} as date)
{%- endmacro %}

{#- A 64-bit float for rates; dbt.type_float() is 32-bit on DuckDB. -#}
{% macro type_double() -%}{{ return(adapter.dispatch('type_double')()) }}{%- endmacro %}
{% macro default__type_double() -%}double precision{%- endmacro %}
{% macro duckdb__type_double() -%}double{%- endmacro %}
{% macro spark__type_double() -%}double{%- endmacro %}

{#- Behavioural tenure band, shared by the period facts and the ML features. -#}
{% macro tenure_band(days_expr) -%}
    case
        when {{ days_expr }} is null then null
        when {{ days_expr }} < 90 then '0-3m'
        when {{ days_expr }} < 365 then '3-12m'
        when {{ days_expr }} < 730 then '12-24m'
        else '24m+'
    end
{%- endmacro %}
