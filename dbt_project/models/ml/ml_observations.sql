-- grain: one row per customer x period start at which the customer was active (labelled).
-- _label_lead_periods records the label lead the rows were built with (see
-- int_observation_points); the underscore keeps it out of the model's features.
select *, {{ var('label_lead_periods', 0) | int }} as _label_lead_periods
from {{ ref('ml_customer_features') }} where label is not null
