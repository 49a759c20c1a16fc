-- Every snapshot instant of an account, for every asset of the account. A snapshot lists the
-- whole account: an asset it does not list (the exchange omits empty assets) had zero free,
-- locked, borrowed and interest at that instant (`is_listed` says which rows were listed).
with snapshots as (
    select * from stg_account_snapshots
),

account_assets as (
    select * from int_account_assets
),

instants as (
    select distinct
        account,
        snapshot_source,
        snapshot_at
    from snapshots
),

final as (
    select
        instants.account,
        account_assets.asset,
        instants.snapshot_source,
        instants.snapshot_at,
        snapshots.asset is not null as is_listed,
        coalesce(snapshots.free, 0) as free,
        coalesce(snapshots.locked, 0) as locked,
        coalesce(snapshots.balance, 0) as balance,
        coalesce(snapshots.borrowed, 0) as borrowed,
        coalesce(snapshots.interest, 0) as interest,
        coalesce(snapshots.net_asset, 0) as net_asset
    from instants
    inner join account_assets on instants.account = account_assets.account
    left join snapshots
        on instants.account = snapshots.account
        and instants.snapshot_source = snapshots.snapshot_source
        and instants.snapshot_at = snapshots.snapshot_at
        and account_assets.asset = snapshots.asset
)

select * from final
