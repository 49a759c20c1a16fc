-- One signed ledger of every movement of a cross-margin account, per asset: one line per
-- effect, unioned from one model per source (int_ledger_<source>). Each line carries its
-- effect on the balance (free + locked), on the borrowed principal and on the unpaid interest;
-- `amount` is the line's signed size (its balance effect, or for an interest charge, which
-- only touches the debt, the interest added).
-- Rules: FAILED rows had no effect and are left out; PENDING rows are in (their effect happened,
-- the status lags) and keep their status so reconciliation can treat them as provisional.
-- Isolated-margin rows are left out (the snapshots are of the cross account). Movements only
-- the capital flow reports (fees, conversions, what a repay paid in BNB) come from it.
-- grain: time(ledger_at)
-- test: unique(account, entry_key)
-- test: not_null(account, ledger_at, asset, entry_type, balance_effect)
-- test: accepted_values(entry_type: ENTRY_TYPES)
-- test: accepted_values(side: SIDES)
with transfers as (
    select * from int_ledger_transfers
),

loans as (
    select * from int_ledger_loans
),

repays as (
    select * from int_ledger_repays
),

interest as (
    select * from int_ledger_interest
),

trades as (
    select * from int_ledger_trades
),

liquidations as (
    select * from int_ledger_liquidations
),

capital_flow as (
    select * from int_ledger_capital_flow
),

entries as (
    select * from transfers
    union all by name
    select * from loans
    union all by name
    select * from repays
    union all by name
    select * from interest
    union all by name
    select * from trades
    union all by name
    select * from liquidations
    union all by name
    select * from capital_flow
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
