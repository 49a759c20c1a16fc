-- Force-liquidation orders: one row per orderId, the latest version seen.
-- test: unique(account, liquidation_key)
-- test: accepted_values(side: SIDES)
with source as (
    select * from src_liquidations
),

renamed as (
    select
        coalesce(_account, account) as account,
        "orderId" as order_id,
        symbol,
        side,
        cast(price as decimal(38, 18)) as price,
        cast(qty as decimal(38, 18)) as qty,
        cast("executedQty" as decimal(38, 18)) as executed_qty,
        cast("avgPrice" as decimal(38, 18)) as avg_price,
        "timeInForce" as time_in_force,
        "isIsolated" as is_isolated,
        timezone('UTC', "updatedTime") as liquidated_at,
        _api as api,
        _partition as fetch_partition,
        _run_id as run_id,
        timezone('UTC', _fetched_at) as fetched_at
    from source
),

latest as (
    select * from latest_version(renamed, (account, order_id))
),

final as (
    select
        cast(order_id as varchar) as liquidation_key,
        *
    from latest
)

select * from final
