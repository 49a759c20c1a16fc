-- materialized: view
-- The ledger's repay lines: a repay is two legs, the principal it pays back and the interest
-- it pays, each taken from the balance and from its side of the debt (a zero leg has no line).
with repays as (
    select * from stg_repays
),

cross_margin_repays as (
    select *
    from repays
    where status <> 'FAILED' and isolated_symbol is null
),

principal_legs as (
    select
        *,
        'principal' as leg,
        'REPAY_PRINCIPAL' as entry_type,
        -principal as balance_effect,
        -principal as principal_effect,
        0 as interest_effect
    from cross_margin_repays
    where principal <> 0
),

interest_legs as (
    select
        *,
        'interest' as leg,
        'REPAY_INTEREST' as entry_type,
        -interest as balance_effect,
        0 as principal_effect,
        -interest as interest_effect
    from cross_margin_repays
    where interest <> 0
),

legs as (
    select * from principal_legs
    union all by name
    select * from interest_legs
),

final as (
    select
        account,
        repaid_at as ledger_at,
        asset,
        entry_type,
        balance_effect,
        principal_effect,
        interest_effect,
        'repays' as source_stream,
        'repays:' || repay_key || ':' || leg as entry_key,
        tx_id,
        status
    from legs
)

select * from final
