-- materialized: view
-- The ledger's trade lines: each fill moves its base and its quote asset (a buyer gains base
-- and pays quote, a seller the reverse) and pays its commission. A fill of a liquidation order
-- is a liquidation line. Isolated-margin fills are left out.
with trades as (
    select * from stg_trades
),

symbols as (
    select * from int_symbols
),

liquidations as (
    select * from stg_liquidations
),

fills as (
    select
        trades.*,
        symbols.base_asset,
        symbols.quote_asset,
        liquidations.order_id is not null as is_liquidation,
        coalesce(trades.quote_qty, exact_product(trades.price, trades.qty)) as fill_quote_qty
    from trades
    left join symbols on trades.symbol = symbols.symbol
    left join liquidations
        on trades.account = liquidations.account
        and trades.symbol = liquidations.symbol
        and trades.order_id = liquidations.order_id
    where not coalesce(trades.is_isolated, false)
),

base_legs as (
    select
        *,
        'base' as leg,
        base_asset as asset,
        case when is_liquidation then 'LIQUIDATION_BASE' else 'TRADE_BASE' end as entry_type,
        case side when 'BUY' then qty else -qty end as balance_effect
    from fills
),

quote_legs as (
    select
        *,
        'quote' as leg,
        quote_asset as asset,
        case when is_liquidation then 'LIQUIDATION_QUOTE' else 'TRADE_QUOTE' end as entry_type,
        case side when 'BUY' then -fill_quote_qty else fill_quote_qty end as balance_effect
    from fills
),

commission_legs as (
    select
        *,
        'commission' as leg,
        commission_asset as asset,
        'COMMISSION' as entry_type,
        -commission as balance_effect
    from fills
    where commission <> 0
),

legs as (
    select * from base_legs
    union all by name
    select * from quote_legs
    union all by name
    select * from commission_legs
),

final as (
    select
        account,
        traded_at as ledger_at,
        asset,
        entry_type,
        balance_effect,
        0 as principal_effect,
        0 as interest_effect,
        'trades' as source_stream,
        'trades:' || trade_key || ':' || leg as entry_key,
        leg,
        order_id,
        trade_id,
        symbol,
        side,
        'CONFIRMED' as status
    from legs
)

select * from final
