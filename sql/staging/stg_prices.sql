-- Closed daily candles of each asset against the reporting quote asset (klines): one row per
-- (symbol, day), the latest version seen. `close_price` values one unit of the base asset in
-- the quote asset at the day's end (23:59:59.999 UTC).
-- test: unique(account, symbol, price_day)
-- test: not_null(account, symbol, price_day, close_price)
with source as (
    select * from src_prices
),

renamed as (
    select
        coalesce(_account, account) as account,
        symbol,
        cast(timezone('UTC', "openTime") as date) as price_day,
        timezone('UTC', "openTime") as opened_at,
        timezone('UTC', "closeTime") as closed_at,
        cast(open as decimal(38, 18)) as open_price,
        cast(high as decimal(38, 18)) as high_price,
        cast(low as decimal(38, 18)) as low_price,
        cast(close as decimal(38, 18)) as close_price,
        cast(volume as decimal(38, 18)) as base_volume,
        cast("quoteAssetVolume" as decimal(38, 18)) as quote_volume,
        "numberOfTrades" as trade_count,
        _api as api,
        _partition as fetch_partition,
        _run_id as run_id,
        timezone('UTC', _fetched_at) as fetched_at
    from source
),

latest as (
    select * from latest_version(renamed, (account, symbol, price_day))
),

final as (
    select * from latest
)

select * from final
