-- Every asset of each account: listed by a snapshot or moved by a ledger line, with when it
-- first and last appears, and its last ledger line.
-- test: unique(account, asset)
with snapshots as (
    select * from stg_account_snapshots
),

ledger as (
    select * from int_ledger
),

seen as (
    select
        account,
        asset,
        snapshot_at as seen_at,
        false as is_line
    from snapshots
    union all
    select
        account,
        asset,
        ledger_at as seen_at,
        true as is_line
    from ledger
    where asset is not null
),

final as (
    select
        account,
        asset,
        min(seen_at) as first_seen_at,
        max(seen_at) as last_seen_at,
        max(seen_at) filter (where is_line) as last_line_at
    from seen
    group by account, asset
)

select * from final
