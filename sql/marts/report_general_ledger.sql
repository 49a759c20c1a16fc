-- materialized: view
-- The general ledger per account and month: every line of int_ledger.
with ledger as (
    select * from int_ledger
),

final as (
    select
        account,
        strftime(ledger_at, '%Y-%m') as month,
        ledger_at as entry_time,
        asset,
        entry_type,
        side,
        amount,
        balance_effect,
        principal_effect,
        interest_effect,
        status,
        symbol,
        tx_id,
        order_id,
        trade_id,
        source_stream,
        entry_key
    from ledger
)

select * from final
