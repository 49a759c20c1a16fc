-- materialized: view
-- Running positions per account and asset after every instant with ledger lines: the
-- baseline of int_position_anchors plus the running sums of int_ledger_instants (FAILED rows
-- excluded, PENDING included: their effect happened). A position before an account's first
-- line is its baseline. Pinned once per figure (for reports); the checks re-anchor at every
-- snapshot instead (int_position_probes).
with instants as (
    select * from int_ledger_instants
),

anchors as (
    select * from int_position_anchors
),

final as (
    select
        instants.account,
        instants.asset,
        instants.instant_at as position_at,
        cast(anchors.baseline_balance + instants.cumulative_balance as decimal(38, 18))
            as balance,
        cast(anchors.baseline_borrowed + instants.cumulative_principal as decimal(38, 18))
            as borrowed,
        cast(anchors.baseline_interest + instants.cumulative_interest as decimal(38, 18))
            as interest
    from instants
    left join anchors
        on instants.account = anchors.account
        and instants.asset = anchors.asset
)

select * from final
