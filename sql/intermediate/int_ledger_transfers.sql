-- materialized: view
-- The ledger's transfer lines: a ROLL_IN adds to the balance, a ROLL_OUT takes from it.
with transfers as (
    select * from stg_transfers
),

final as (
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
        0 as principal_effect,
        0 as interest_effect,
        'transfers' as source_stream,
        'transfers:' || transfer_key as entry_key,
        tx_id,
        status
    from transfers
    where status <> 'FAILED' and isolated_symbol is null
)

select * from final
