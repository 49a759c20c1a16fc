-- The ledger per account, asset and instant: what the instant's lines changed (balance,
-- borrowed principal, unpaid interest) and the running sums of those changes from the first
-- line on (cumulative_*). A position is an anchored value plus a difference of running sums
-- (int_positions, int_position_probes). FAILED rows are not in the ledger; PENDING rows are
-- (their effect happened, their status lags). Rebuilt since a cut, an asset's sums go on from
-- its last instant before it.
-- grain: time(instant_at)
-- keeps: asset varchar, instant_at timestamp, cumulative_balance decimal(38, 18)
-- keeps: cumulative_principal decimal(38, 18), cumulative_interest decimal(38, 18)
-- test: unique(account, asset, instant_at)
with ledger as (
    select * from int_ledger
),

cuts as (
    select * from build_cuts
),

kept as (
    select * from kept_int_ledger_instants
),

per_instant as (
    select
        ledger.account,
        ledger.asset,
        ledger.ledger_at as instant_at,
        sum(ledger.balance_effect) as balance_change,
        sum(ledger.principal_effect) as principal_change,
        sum(ledger.interest_effect) as interest_change
    from ledger
    left join cuts on ledger.account = cuts.account
    where
        ledger.asset is not null
        and (cuts.cut_at is null or ledger.ledger_at >= cuts.cut_at)
    group by all
),

-- each asset's running sums at its last instant before the cut: where the new ones start
openings as (
    select
        account,
        asset,
        arg_max(cumulative_balance, instant_at) as balance,
        arg_max(cumulative_principal, instant_at) as principal,
        arg_max(cumulative_interest, instant_at) as interest
    from kept
    group by all
),

final as (
    select
        per_instant.*,
        coalesce(openings.balance, 0) + sum(per_instant.balance_change) over running
            as cumulative_balance,
        coalesce(openings.principal, 0) + sum(per_instant.principal_change) over running
            as cumulative_principal,
        coalesce(openings.interest, 0) + sum(per_instant.interest_change) over running
            as cumulative_interest
    from per_instant
    left join openings
        on per_instant.account = openings.account
        and per_instant.asset = openings.asset
    window running as (
        partition by per_instant.account, per_instant.asset
        order by per_instant.instant_at
        rows between unbounded preceding and current row
    )
)

select * from final
