-- materialized: view
-- The ledger's interest lines: an hourly charge adds to the unpaid interest; a *_CONVERTED
-- charge was paid at once in BNB (the row's asset), so it lowers the BNB balance and never
-- becomes unpaid interest.
-- The cross-margin charges come deduplicated once from int_interest_charges.
with interest as (
    select * from int_interest_charges
),

final as (
    select
        account,
        accrued_at as ledger_at,
        asset,
        case when is_converted then 'INTEREST_CONVERTED' else 'INTEREST' end as entry_type,
        case when is_converted then -interest else 0 end as balance_effect,
        0 as principal_effect,
        case when is_converted then 0 else interest end as interest_effect,
        'interest' as source_stream,
        'interest:' || interest_key as entry_key,
        tx_id,
        'CONFIRMED' as status
    from interest
)

select * from final
