-- One signed ledger of every movement of a cross-margin account, per asset: one line per
-- effect. Each line carries its effect on the balance (free + locked), on the borrowed
-- principal and on the unpaid interest; `amount` is the line's signed size (its balance effect,
-- or for an interest charge, which only touches the debt, the interest added).
-- Rules: FAILED rows had no effect and are left out; PENDING rows are in (their effect happened,
-- the status lags) and keep their status so reconciliation can treat them as provisional.
-- Isolated-margin rows are left out (the snapshots are of the cross account).
-- Liquidation fills come from myTrades rows of the liquidation order; a liquidation with no
-- such trades falls back to its own row (executedQty at avgPrice, no commission).
with transfers as (
    select * from stg_transfers
),

loans as (
    select * from stg_loans
),

repays as (
    select * from stg_repays
),

-- the cross-margin charges, deduplicated once in int_interest_charges
interest as (
    select * from int_interest_charges
),

trades as (
    select * from stg_trades
),

liquidations as (
    select * from stg_liquidations
),

symbols as (
    select * from int_symbols
),

transfer_entries as (
    select
        account,
        transferred_at as ledger_at,
        asset,
        case transfer_type
            when 'ROLL_IN' then 'TRANSFER_IN'
            when 'ROLL_OUT' then 'TRANSFER_OUT'
        end as entry_type,
        case transfer_type
            when 'ROLL_IN' then amount
            when 'ROLL_OUT' then -amount
        end as balance_effect,
        cast(0 as decimal(38, 18)) as principal_effect,
        cast(0 as decimal(38, 18)) as interest_effect,
        'transfers' as source_stream,
        'transfers:' || transfer_key as entry_key,
        tx_id,
        status
    from transfers
    where status <> 'FAILED' and isolated_symbol is null
),

borrow_entries as (
    select
        account,
        loaned_at as ledger_at,
        asset,
        'BORROW' as entry_type,
        principal as balance_effect,
        principal as principal_effect,
        cast(0 as decimal(38, 18)) as interest_effect,
        'loans' as source_stream,
        'loans:' || loan_key as entry_key,
        tx_id,
        status
    from loans
    where status <> 'FAILED' and isolated_symbol is null
),

repay_principal_entries as (
    select
        account,
        repaid_at as ledger_at,
        asset,
        'REPAY_PRINCIPAL' as entry_type,
        -principal as balance_effect,
        -principal as principal_effect,
        cast(0 as decimal(38, 18)) as interest_effect,
        'repays' as source_stream,
        'repays:' || repay_key || ':principal' as entry_key,
        tx_id,
        status
    from repays
    where status <> 'FAILED' and isolated_symbol is null and principal <> 0
),

repay_interest_entries as (
    select
        account,
        repaid_at as ledger_at,
        asset,
        'REPAY_INTEREST' as entry_type,
        -interest as balance_effect,
        cast(0 as decimal(38, 18)) as principal_effect,
        -interest as interest_effect,
        'repays' as source_stream,
        'repays:' || repay_key || ':interest' as entry_key,
        tx_id,
        status
    from repays
    where status <> 'FAILED' and isolated_symbol is null and interest <> 0
),

-- *_CONVERTED charges were paid at once in BNB (the row's asset): they lower the BNB balance
-- and never become unpaid interest
interest_entries as (
    select
        account,
        accrued_at as ledger_at,
        asset,
        case
            when interest_type like '%_CONVERTED' then 'INTEREST_CONVERTED'
            else 'INTEREST'
        end as entry_type,
        case
            when interest_type like '%_CONVERTED' then -interest
            else cast(0 as decimal(38, 18))
        end as balance_effect,
        cast(0 as decimal(38, 18)) as principal_effect,
        case
            when interest_type like '%_CONVERTED' then cast(0 as decimal(38, 18))
            else interest
        end as interest_effect,
        'interest' as source_stream,
        'interest:' || interest_key as entry_key,
        tx_id,
        'CONFIRMED' as status
    from interest
),

fills as (
    select
        trades.*,
        symbols.base_asset,
        symbols.quote_asset,
        liquidations.order_id is not null as is_liquidation,
        -- price and qty carry at most 8 decimals on Binance; 10 keeps the product exact
        coalesce(
            trades.quote_qty,
            cast(
                cast(trades.price as decimal(38, 10)) * cast(trades.qty as decimal(38, 10))
                as decimal(38, 18)
            )
        ) as fill_quote_qty
    from trades
    left join symbols on trades.symbol = symbols.symbol
    left join liquidations
        on trades.account = liquidations.account
        and trades.symbol = liquidations.symbol
        and trades.order_id = liquidations.order_id
    where not coalesce(trades.is_isolated, false)
),

fill_base_entries as (
    select
        account,
        traded_at as ledger_at,
        base_asset as asset,
        case when is_liquidation then 'LIQUIDATION_BASE' else 'TRADE_BASE' end as entry_type,
        case side when 'BUY' then qty else -qty end as balance_effect,
        cast(0 as decimal(38, 18)) as principal_effect,
        cast(0 as decimal(38, 18)) as interest_effect,
        'trades' as source_stream,
        'trades:' || trade_key || ':base' as entry_key,
        order_id,
        trade_id,
        symbol,
        side,
        'CONFIRMED' as status
    from fills
),

fill_quote_entries as (
    select
        account,
        traded_at as ledger_at,
        quote_asset as asset,
        case when is_liquidation then 'LIQUIDATION_QUOTE' else 'TRADE_QUOTE' end as entry_type,
        case side when 'BUY' then -fill_quote_qty else fill_quote_qty end as balance_effect,
        cast(0 as decimal(38, 18)) as principal_effect,
        cast(0 as decimal(38, 18)) as interest_effect,
        'trades' as source_stream,
        'trades:' || trade_key || ':quote' as entry_key,
        order_id,
        trade_id,
        symbol,
        side,
        'CONFIRMED' as status
    from fills
),

commission_entries as (
    select
        account,
        traded_at as ledger_at,
        commission_asset as asset,
        'COMMISSION' as entry_type,
        -commission as balance_effect,
        cast(0 as decimal(38, 18)) as principal_effect,
        cast(0 as decimal(38, 18)) as interest_effect,
        'trades' as source_stream,
        'trades:' || trade_key || ':commission' as entry_key,
        order_id,
        trade_id,
        symbol,
        side,
        'CONFIRMED' as status
    from fills
    where commission <> 0
),

unfilled_liquidations as (
    select
        liquidations.*,
        symbols.base_asset,
        symbols.quote_asset,
        cast(
            cast(liquidations.executed_qty as decimal(38, 10))
            * cast(liquidations.avg_price as decimal(38, 10))
            as decimal(38, 18)
        ) as executed_quote_qty
    from liquidations
    left join symbols on liquidations.symbol = symbols.symbol
    anti join trades
        on liquidations.account = trades.account
        and liquidations.symbol = trades.symbol
        and liquidations.order_id = trades.order_id
    where liquidations.executed_qty <> 0 and not coalesce(liquidations.is_isolated, false)
),

liquidation_base_entries as (
    select
        account,
        liquidated_at as ledger_at,
        base_asset as asset,
        'LIQUIDATION_BASE' as entry_type,
        case side when 'BUY' then executed_qty else -executed_qty end as balance_effect,
        cast(0 as decimal(38, 18)) as principal_effect,
        cast(0 as decimal(38, 18)) as interest_effect,
        'liquidations' as source_stream,
        'liquidations:' || liquidation_key || ':base' as entry_key,
        order_id,
        symbol,
        side,
        'CONFIRMED' as status
    from unfilled_liquidations
),

liquidation_quote_entries as (
    select
        account,
        liquidated_at as ledger_at,
        quote_asset as asset,
        'LIQUIDATION_QUOTE' as entry_type,
        case side
            when 'BUY' then -executed_quote_qty
            else executed_quote_qty
        end as balance_effect,
        cast(0 as decimal(38, 18)) as principal_effect,
        cast(0 as decimal(38, 18)) as interest_effect,
        'liquidations' as source_stream,
        'liquidations:' || liquidation_key || ':quote' as entry_key,
        order_id,
        symbol,
        side,
        'CONFIRMED' as status
    from unfilled_liquidations
),

entries as (
    select * from transfer_entries
    union all by name
    select * from borrow_entries
    union all by name
    select * from repay_principal_entries
    union all by name
    select * from repay_interest_entries
    union all by name
    select * from interest_entries
    union all by name
    select * from fill_base_entries
    union all by name
    select * from fill_quote_entries
    union all by name
    select * from commission_entries
    union all by name
    select * from liquidation_base_entries
    union all by name
    select * from liquidation_quote_entries
),

final as (
    select
        account,
        entry_key,
        ledger_at,
        asset,
        entry_type,
        cast(
            case when balance_effect <> 0 then balance_effect else interest_effect end
            as decimal(38, 18)
        ) as amount,
        cast(balance_effect as decimal(38, 18)) as balance_effect,
        cast(principal_effect as decimal(38, 18)) as principal_effect,
        cast(interest_effect as decimal(38, 18)) as interest_effect,
        status,
        source_stream,
        cast(tx_id as bigint) as tx_id,
        cast(order_id as bigint) as order_id,
        cast(trade_id as bigint) as trade_id,
        cast(symbol as varchar) as symbol,
        cast(side as varchar) as side
    from entries
)

select * from final
