-- materialized: view
-- The ledger's borrow lines: a loan adds its principal to the balance and to the debt.
with loans as (
    select * from stg_loans
),

final as (
    select
        account,
        loaned_at as ledger_at,
        asset,
        'BORROW' as entry_type,
        principal as balance_effect,
        principal as principal_effect,
        0 as interest_effect,
        'loans' as source_stream,
        'loans:' || loan_key as entry_key,
        tx_id,
        status
    from loans
    where status <> 'FAILED' and isolated_symbol is null
)

select * from final
