-- model: stg_trades
-- rule: price and qty have at most 8 decimals (a fill's value is computed in units of 1e-8)
select *
from stg_trades
where price <> round(price, 8) or qty <> round(qty, 8)
