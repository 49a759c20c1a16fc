-- model: stg_interest
-- rule: principal and rate have at most 8 decimals (the charge is computed in units of 1e-8)
select *
from stg_interest
where principal <> round(principal, 8) or interest_rate <> round(interest_rate, 8)
