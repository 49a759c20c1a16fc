-- materialized: view
-- The ledger's lines of liquidations with no fills exported: a liquidation whose myTrades rows
-- are in the lake is booked from them (int_ledger_trades); one without falls back to its own
-- row, executedQty of the base at avgPrice, no commission. Isolated-margin ones are left out.
with liquidations as (
    select * from stg_liquidations
),

trades as (
    select * from stg_trades
),

symbols as (
    select * from int_symbols
),

unfilled as (
    select
        liquidations.*,
        symbols.base_asset,
        symbols.quote_asset,
        exact_product(liquidations.executed_qty, liquidations.avg_price) as executed_quote_qty
    from liquidations
    left join symbols on liquidations.symbol = symbols.symbol
    anti join trades
        on liquidations.account = trades.account
        and liquidations.symbol = trades.symbol
        and liquidations.order_id = trades.order_id
    where liquidations.executed_qty <> 0 and not coalesce(liquidations.is_isolated, false)
),

base_legs as (
    select
        *,
        'base' as leg,
        base_asset as asset,
        'LIQUIDATION_BASE' as entry_type,
        case side when 'BUY' then executed_qty else -executed_qty end as balance_effect
    from unfilled
),

quote_legs as (
    select
        *,
        'quote' as leg,
        quote_asset as asset,
        'LIQUIDATION_QUOTE' as entry_type,
        case side when 'BUY' then -executed_quote_qty else executed_quote_qty end
            as balance_effect
    from unfilled
),

legs as (
    select * from base_legs
    union all by name
    select * from quote_legs
),

final as (
    select
        account,
        liquidated_at as ledger_at,
        asset,
        entry_type,
        balance_effect,
        0 as principal_effect,
        0 as interest_effect,
        'liquidations' as source_stream,
        'liquidations:' || liquidation_key || ':' || leg as entry_key,
        order_id,
        symbol,
        side,
        'CONFIRMED' as status
    from legs
)

select * from final
