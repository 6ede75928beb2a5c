-- grain: one row per customer x activity day x source. Any touch-point counts as activity
-- for recency features; var('activity_sources') picks which ones define inactivity churn.
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
