-- materialized: view
-- The ledger's lines that only the capital flow reports: a force liquidation's fee
-- (LIQUIDATION_FEE), dust and delisting conversions (SMALL_BALANCE_CONVERT, SMALL_CONVERT:
-- CONVERSION), commission returns, other liquidation movements (LIQUIDATION_OTHER), and what a
-- repay paid in another asset took (REPAY_DEBIT: the BNB of a BNB_AUTO_REPAY, whose typed row
-- is in the debt's asset). Every other capital-flow row repeats a typed row and is only
-- cross-checked (int_capital_flow_matches). The capital flow is kept 90 days: before it,
-- these movements are unknown and the balance figure is not verified (int_coverage_needs).
with flows as (
    select * from int_capital_flow
),

repays as (
    select * from stg_repays
),

own_movements as (
    select
        *,
        case flow_type
            when 'LIQUIDATION_FEE' then 'LIQUIDATION_FEE'
            when 'COMMISSION_RETURN' then 'COMMISSION_RETURN'
            when 'OTHER_LIQUIDATION' then 'LIQUIDATION_OTHER'
            else 'CONVERSION'
        end as entry_type,
        'CONFIRMED' as status
    from flows
    where flow_type in (
        'LIQUIDATION_FEE',
        'SMALL_BALANCE_CONVERT',
        'SMALL_CONVERT',
        'COMMISSION_RETURN',
        'OTHER_LIQUIDATION'
    )
),

repay_debits as (
    select
        flows.*,
        'REPAY_DEBIT' as entry_type,
        repays.status
    from flows
    inner join repays
        on flows.account = repays.account
        and flows.tran_id = repays.tx_id
        and flows.asset <> repays.asset
    where
        flows.flow_type in ('REPAY', 'REPAY_LIQUIDATION')
        and repays.status <> 'FAILED'
        and repays.isolated_symbol is null
),

movements as (
    select * from own_movements
    union all by name
    select * from repay_debits
),

final as (
    select
        account,
        flowed_at as ledger_at,
        asset,
        entry_type,
        amount as balance_effect,
        0 as principal_effect,
        0 as interest_effect,
        'capital_flow' as source_stream,
        'capital_flow:' || flow_key as entry_key,
        tran_id as tx_id,
        symbol,
        status
    from movements
)

select * from final
