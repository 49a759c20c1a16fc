-- Margin trades (fills): one row per (symbol, id), the latest version seen.
-- grain: time(traded_at)
-- test: unique(account, trade_key)
-- test: not_null(account, symbol, price, qty, commission, traded_at)
with source as (
    select * from src_trades
),

renamed as (
    select
        coalesce(_account, account) as account,
        id as trade_id,
        symbol,
        "orderId" as order_id,
        cast(price as decimal(38, 18)) as price,
        cast(qty as decimal(38, 18)) as qty,
        cast("quoteQty" as decimal(38, 18)) as quote_qty,
        cast(commission as decimal(38, 18)) as commission,
        "commissionAsset" as commission_asset,
        "isBuyer" as is_buyer,
        "isMaker" as is_maker,
        "isBestMatch" as is_best_match,
        "isIsolated" as is_isolated,
        timezone('UTC', "time") as traded_at,
        _api as api,
        _partition as fetch_partition,
        _run_id as run_id,
        timezone('UTC', _fetched_at) as fetched_at
    from source
),

latest as (
    select * from latest_version(renamed, (account, symbol, trade_id))
),

final as (
    select
        symbol || ':' || trade_id as trade_key,
        case when is_buyer then 'BUY' else 'SELL' end as side,
        *
    from latest
)

select * from final
