-- Margin orders: one row per (symbol, orderId), the latest version seen (an order moves from
-- NEW to PARTIALLY_FILLED to FILLED or CANCELED between reads).
-- test: unique(account, order_key)
-- test: accepted_values(side: SIDES)
-- test: accepted_values(status: ORDER_STATUSES)
with source as (
    select * from src_orders
),

renamed as (
    select
        coalesce(_account, account) as account,
        "orderId" as order_id,
        symbol,
        "clientOrderId" as client_order_id,
        side,
        "type" as order_type,
        status,
        cast(price as decimal(38, 18)) as price,
        cast("origQty" as decimal(38, 18)) as orig_qty,
        cast("executedQty" as decimal(38, 18)) as executed_qty,
        cast("cummulativeQuoteQty" as decimal(38, 18)) as cumulative_quote_qty,
        cast("icebergQty" as decimal(38, 18)) as iceberg_qty,
        cast("stopPrice" as decimal(38, 18)) as stop_price,
        "timeInForce" as time_in_force,
        "isWorking" as is_working,
        "isIsolated" as is_isolated,
        "selfTradePreventionMode" as self_trade_prevention_mode,
        timezone('UTC', "time") as ordered_at,
        timezone('UTC', "updateTime") as updated_at,
        _api as api,
        _partition as fetch_partition,
        _run_id as run_id,
        timezone('UTC', _fetched_at) as fetched_at
    from source
),

latest as (
    select * from latest_version(renamed, (account, symbol, order_id))
),

final as (
    select
        symbol || ':' || order_id as order_key,
        *
    from latest
)

select * from final
