-- model: stg_loans
-- rule: a borrow's amount = its principal
select *
from stg_loans
where amount <> principal
