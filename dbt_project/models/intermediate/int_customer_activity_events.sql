-- grain: one row per activity event (customer, day, source). Any touch-point counts as activity
-- for recency and engagement; var('activity_sources') picks which ones define inactivity churn
-- (int_inactivity_spans).
-- A view: its two readers each scan it once, and writing ~110M rows at 1M customers cost more
-- than the scans (13 s cold and on every daily run, against ~2 s per scan).
{{ config(materialized='view') }}
select customer_id, order_date as activity_date, 'orders' as activity_source
from {{ ref('stg_crm__orders') }} where status = 'completed'
union all
select customer_id, occurred_on, 'interactions' from {{ ref('stg_crm__interactions') }}
union all
select customer_id, opened_on, 'support_tickets' from {{ ref('stg_crm__support_tickets') }}
union all
select customer_id, occurred_on, 'loyalty_events' from {{ ref('stg_crm__loyalty_events') }}
union all
select customer_id, start_date, 'subscriptions' from {{ ref('stg_crm__subscriptions') }}
