-- The published daily interest rate per asset, in force from each hour on: one row per
-- (asset, hour), the latest version seen.
-- test: unique(account, asset, rate_from)
-- test: not_null(account, asset, daily_rate, rate_from)
with source as (
    select * from src_interest_rates
),

renamed as (
    select
        coalesce(_account, account) as account,
        asset,
        cast("dailyInterestRate" as decimal(38, 18)) as daily_rate,
        "vipLevel" as vip_level,
        timezone('UTC', "timestamp") as rate_from,
        _api as api,
        _partition as fetch_partition,
        _run_id as run_id,
        timezone('UTC', _fetched_at) as fetched_at
    from source
),

latest as (
    select * from latest_version(renamed, (account, asset, rate_from))
),

final as (
    select * from latest
)

select * from final
