{#- The customer attribute columns usable as segment dimensions and model features:
    every column of the relation except keys, dates, lineage and SCD2 bookkeeping,
    optionally restricted by var('segment_dimensions'). Names are validated because
    they are spliced into SQL as identifiers. -#}
{% macro customer_attribute_columns(relation, for_segments=false) -%}
    {%- if not execute -%}{{ return([]) }}{%- endif -%}
    {%- set reserved = ['customer_id', 'signup_date', 'birth_year', 'updated_at', '_source_file', '_row_number', '_loaded_at',
                        'dbt_scd_id', 'dbt_updated_at', 'dbt_valid_from', 'dbt_valid_to', 'dbt_is_deleted',
                        'first_active_date', 'attributes_valid_from'] -%}
    {%- set wanted = (var('segment_dimensions') or []) if for_segments else [] -%}
    {%- set out = [] -%}
    {%- for col in adapter.get_columns_in_relation(relation) -%}
        {%- set name = col.name | lower -%}
        {%- if name not in reserved and (wanted | length == 0 or name in wanted) -%}
            {%- if not modules.re.match('^[a-z_][a-z0-9_]{0,62}$', name) -%}
                {{ exceptions.raise_compiler_error("customer column '" ~ name ~ "' is not a safe identifier; rename it to lower_snake_case") }}
            {%- endif -%}
            {%- do out.append(name) -%}
        {%- endif -%}
    {%- endfor -%}
    {%- if for_segments and out | length > 0 -%}
        {#- a segment dimension needs at least one value and at most segment_max_values of them -#}
        {%- set probe -%}
            {%- for name in out %}
            select '{{ name }}' as col, count(distinct {{ adapter.quote(name) }}) as n from {{ relation }}
            {% if not loop.last %}union all{% endif %}
            {%- endfor %}
        {%- endset -%}
        {%- set counts = run_query(probe) -%}
        {%- set keep = [] -%}
        {%- for row in counts.rows -%}
            {%- if row[1] >= 1 and row[1] <= var('segment_max_values') | int -%}{%- do keep.append(row[0]) -%}{%- endif -%}
        {%- endfor -%}
        {{ return(keep) }}
    {%- endif -%}
    {{ return(out) }}
{%- endmacro %}
