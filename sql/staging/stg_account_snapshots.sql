-- Account snapshots per asset: 'live' (each run's /margin/account) and 'daily' (the exchange's
-- end-of-day snapshot, 23:59:59 UTC). One row per (source, snapshot time, asset).
-- test: unique(account, snapshot_key)
-- test: accepted_values(snapshot_source: live, daily)
with source as (
    select * from src_account_snapshots
),

renamed as (
    select
        coalesce(_account, account) as account,
        source as snapshot_source,
        timezone('UTC', "snapshotTime") as snapshot_at,
        asset,
        cast(free as decimal(38, 18)) as free,
        cast(locked as decimal(38, 18)) as locked,
        cast(borrowed as decimal(38, 18)) as borrowed,
        cast(interest as decimal(38, 18)) as interest,
        cast("netAsset" as decimal(38, 18)) as net_asset,
        cast("marginLevel" as decimal(38, 18)) as margin_level,
        cast("totalAssetOfBtc" as decimal(38, 18)) as total_asset_of_btc,
        cast("totalLiabilityOfBtc" as decimal(38, 18)) as total_liability_of_btc,
        cast("totalNetAssetOfBtc" as decimal(38, 18)) as total_net_asset_of_btc,
        _api as api,
        _partition as fetch_partition,
        _run_id as run_id,
        timezone('UTC', _fetched_at) as fetched_at
    from source
),

latest as (
    select * from latest_version(renamed, (account, snapshot_source, snapshot_at, asset))
),

final as (
    select
        snapshot_source || ':' || epoch_ms(snapshot_at) || ':' || asset as snapshot_key,
        free + locked as balance,
        *
    from latest
)

select * from final
