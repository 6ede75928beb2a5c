-- ml_customer_features aggregates the scoring points' interactions against one date (as_of + 1
-- day, where int_observation_points puts every scoring point): more than one date would leave the
-- other dates' points without interaction features, so it fails the build instead
select count(distinct observation_date) as scoring_dates
from {{ ref('int_observation_points') }}
where label is null
having count(distinct observation_date) > 1
