-- model: stg_account_snapshots
-- rule: netAsset = free + locked - borrowed - interest
select *
from stg_account_snapshots
where net_asset <> free + locked - borrowed - interest
