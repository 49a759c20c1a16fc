-- materialized: view
-- The ledger's repay lines: a repay is two legs, the principal it pays back and the interest
-- it pays, each taken from its side of the debt (a zero leg has no line). MANUAL and AUTO
-- repays pay with the asset itself, so each leg also leaves its balance; a BNB_AUTO_REPAY is
-- paid in BNB and a POINT_AUTO_REPAY with points, so they move no balance of the asset (what
-- BNB paid is the capital flow's REPAY row in BNB: int_ledger_capital_flow).
with repays as (
    select * from stg_repays
),

cross_margin_repays as (
    select
        *,
        coalesce(repay_type, '') not in ('BNB_AUTO_REPAY', 'POINT_AUTO_REPAY')
            as is_paid_in_asset
    from repays
    where status <> 'FAILED' and isolated_symbol is null
),

principal_legs as (
    select
        *,
        'principal' as leg,
        'REPAY_PRINCIPAL' as entry_type,
        case when is_paid_in_asset then -principal else 0 end as balance_effect,
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
        case when is_paid_in_asset then -interest else 0 end as balance_effect,
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
