-- materialized: view
-- The general ledger per account and month: every line of int_ledger. `amount` is kept as
-- it was (its balance effect, or for an interest charge the interest added): the journal
-- (report_journal) is the double-entry view; journal_no names a line's entry there.
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
        entry_key,
        regexp_replace(entry_key, ':(base|quote|commission|principal|interest)$', '')
            as journal_no
    from ledger
)

select * from final
