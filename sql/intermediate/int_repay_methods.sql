-- How each cross-margin repay was paid: `asset` (the repaid asset itself: MANUAL, AUTO),
-- `bnb` (BNB_AUTO_REPAY), `points` (POINT_AUTO_REPAY) or `liquidation` (a force
-- liquidation's repay: the API types it AUTO, so it is recognised by the capital flow's
-- REPAY_LIQUIDATION row of the same tranId, or, beyond the flow's retention, by a
-- liquidation of the account at the same instant). FAILED repays are left out.
-- test: unique(account, repay_key)
-- test: accepted_values(paid_with: asset, bnb, points, liquidation)
with repays as (
    select * from stg_repays
),

flows as (
    select * from stg_capital_flow
),

liquidations as (
    select * from stg_liquidations
),

liquidation_flows as (
    select distinct
        account,
        tran_id
    from flows
    where flow_type = 'REPAY_LIQUIDATION'
),

liquidation_instants as (
    select distinct
        account,
        liquidated_at
    from liquidations
    where not coalesce(is_isolated, false)
),

final as (
    select
        repays.account,
        repays.repay_key,
        repays.tx_id,
        repays.asset,
        repays.repaid_at,
        repays.repay_type,
        repays.status,
        case
            when repays.repay_type = 'BNB_AUTO_REPAY' then 'bnb'
            when repays.repay_type = 'POINT_AUTO_REPAY' then 'points'
            when
                liquidation_flows.tran_id is not null
                or liquidation_instants.liquidated_at is not null
                then 'liquidation'
            else 'asset'
        end as paid_with
    from repays
    left join liquidation_flows
        on repays.account = liquidation_flows.account
        and repays.tx_id = liquidation_flows.tran_id
    left join liquidation_instants
        on repays.account = liquidation_instants.account
        and repays.repaid_at = liquidation_instants.liquidated_at
    where repays.status <> 'FAILED' and repays.isolated_symbol is null
)

select * from final
