{#- Incremental daily runs.

    meta.incremental_state holds, per incremental model, what its last successful build saw:
    the load watermark (latest raw _loaded_at / full rebuild time), the as-of date and the
    parameters. int_incremental_boundary compares that with the raw data now and gives, per model,
    the earliest day the new data can change; incremental models recompute every period whose end
    is on or after that day (see the README, "Daily (incremental) runs"). -#}

{% macro create_incremental_state() %}
    create schema if not exists meta;
    create table if not exists meta.incremental_state (
        model varchar, watermark timestamp, as_of_date date, params varchar, boundary date, built_at timestamp
    );
{% endmacro %}

{#- After a run: every incremental model that was built successfully, together with every model
    upstream of it, records what it was built from. A model that failed, was not selected, or was
    built from upstream tables this run did not rebuild keeps its old row, so its next build looks
    back further (never less far). -#}
{% macro record_incremental_state(results) %}
    {%- if execute -%}
    {%- set ok = [] -%}
    {%- for res in results -%}
        {%- if res.status == 'success' -%}{%- do ok.append(res.node.unique_id) -%}{%- endif -%}
    {%- endfor -%}
    {%- set statements = [] -%}
    {%- for res in results -%}
        {%- if res.node.resource_type == 'model' and res.node.config.materialized == 'incremental'
              and res.status == 'success' -%}
            {%- set todo = [res.node.unique_id] -%}
            {%- set seen = [] -%}
            {%- set missing = [] -%}
            {%- for _ in range(1000) if todo -%}
                {%- set uid = todo.pop() -%}
                {%- if uid not in seen -%}
                    {%- do seen.append(uid) -%}
                    {%- set node = graph.nodes.get(uid) -%}
                    {%- if node is not none and node.resource_type in ['model', 'snapshot'] -%}
                        {%- if uid not in ok -%}{%- do missing.append(uid) -%}{%- endif -%}
                        {%- for parent in node.depends_on.nodes -%}{%- do todo.append(parent) -%}{%- endfor -%}
                    {%- endif -%}
                {%- endif -%}
            {%- endfor -%}
            {%- if missing | length == 0 -%}
                {%- do statements.append("create or replace temp table _incremental_state as select '" ~ res.node.name
                    ~ "' as model, watermark, as_of_date, params, boundary, current_timestamp as built_at "
                    ~ "from intermediate.int_incremental_boundary where model = '" ~ res.node.name ~ "'") -%}
                {%- do statements.append("delete from meta.incremental_state where model = '" ~ res.node.name ~ "'") -%}
                {%- do statements.append("insert into meta.incremental_state select * from _incremental_state") -%}
                {%- do statements.append("drop table _incremental_state") -%}
            {%- else -%}
                {{ log("incremental state of " ~ res.node.name ~ " not advanced: not rebuilt this run: " ~ (missing | join(", ")), info=true) }}
            {%- endif -%}
        {%- endif -%}
    {%- endfor -%}
    {%- for sql in statements -%}
        {%- do run_query(sql) -%}
    {%- endfor -%}
    {%- endif -%}
    select 1
{% endmacro %}

{#- The first day the incremental build of the current model recomputes (null = all). -#}
{% macro incremental_boundary() -%}
    (select boundary from {{ ref('int_incremental_boundary') }} where model = '{{ model.name }}')
{%- endmacro %}

{#- SQL condition on a period's exclusive end, true for the periods an incremental build recomputes. -#}
{% macro in_touched_periods(next_period_start_expr) -%}
    {%- if is_incremental() -%}
    ({{ next_period_start_expr }} > coalesce({{ incremental_boundary() }}, cast('1900-01-01' as date)))
    {%- else -%}
    true
    {%- endif -%}
{%- endmacro %}

{#- The incremental models of the project (their states decide the boundary), from the graph. -#}
{% macro incremental_model_names() -%}
    {%- set names = [] -%}
    {%- if execute -%}
        {%- for node in graph.nodes.values() -%}
            {%- if node.resource_type == 'model' and node.config.materialized == 'incremental' -%}
                {%- do names.append(node.name) -%}
            {%- endif -%}
        {%- endfor -%}
    {%- else -%}
        {%- do names.append('fct_customer_period') -%}
    {%- endif -%}
    {{ return(names | sort) }}
{%- endmacro %}
