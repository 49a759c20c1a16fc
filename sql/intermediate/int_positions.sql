-- materialized: view
-- Running positions per account and asset after every instant with ledger lines: cumulative
-- effects (FAILED rows excluded, PENDING included: their effect happened) plus the baseline of
-- int_position_anchors. A position before an account's first line is its baseline.
-- A view: cheap to compute, read by one table (int_interest_hours) and a report view.
with ledger as (
    select * from int_ledger
),

anchors as (
    select * from int_position_anchors
),

per_instant as (
    select
        account,
        asset,
        ledger_at as position_at,
        sum(balance_effect) as balance_change,
        sum(principal_effect) as principal_change,
        sum(interest_effect) as interest_change
    from ledger
    where asset is not null
    group by all
),

cumulative as (
    select
        *,
        sum(balance_change) over running as cumulative_balance,
        sum(principal_change) over running as cumulative_principal,
        sum(interest_change) over running as cumulative_interest
    from per_instant
    window running as (
        partition by account, asset order by position_at
        rows between unbounded preceding and current row
    )
),

final as (
    select
        cumulative.account,
        cumulative.asset,
        cumulative.position_at,
        cast(anchors.baseline_balance + cumulative.cumulative_balance as decimal(38, 18))
            as balance,
        cast(anchors.baseline_borrowed + cumulative.cumulative_principal as decimal(38, 18))
            as borrowed,
        cast(anchors.baseline_interest + cumulative.cumulative_interest as decimal(38, 18))
            as interest
    from cumulative
    left join anchors
        on cumulative.account = anchors.account
        and cumulative.asset = anchors.asset
)

select * from final
