-- model: stg_repays
-- rule: repay amount = principal + interest
select *
from stg_repays
where amount <> principal + interest
