-- materialized: view
-- Trades with their fees, per account and month; liquidation fills flagged.
with trades as (
    select * from stg_trades
),

symbols as (
    select * from int_symbols
),

orders as (
    select * from stg_orders
),

liquidations as (
    select * from stg_liquidations
),

final as (
    select
        trades.account,
        strftime(trades.traded_at, '%Y-%m') as month,
        trades.traded_at as trade_time,
        trades.symbol,
        symbols.base_asset,
        symbols.quote_asset,
        trades.trade_id,
        trades.order_id,
        trades.side,
        trades.price,
        trades.qty,
        coalesce(
            trades.quote_qty,
            cast(
                cast(trades.price as decimal(38, 10)) * cast(trades.qty as decimal(38, 10))
                as decimal(38, 18)
            )
        ) as quote_qty,
        trades.commission,
        trades.commission_asset,
        trades.is_maker,
        liquidations.order_id is not null as is_liquidation,
        coalesce(trades.is_isolated, false) as is_isolated,
        orders.order_type,
        orders.status as order_status
    from trades
    left join symbols on trades.symbol = symbols.symbol
    left join orders
        on trades.account = orders.account
        and trades.symbol = orders.symbol
        and trades.order_id = orders.order_id
    left join liquidations
        on trades.account = liquidations.account
        and trades.symbol = liquidations.symbol
        and trades.order_id = liquidations.order_id
)

select * from final
