-- The ledger per account, asset and instant: what the instant's lines changed (balance,
-- borrowed principal, unpaid interest) and the running sums of those changes from the first
-- line on (cumulative_*). A position is an anchored value plus a difference of running sums
-- (int_positions, int_position_probes). FAILED rows are not in the ledger; PENDING rows are
-- (their effect happened, their status lags).
-- test: unique(account, asset, instant_at)
with ledger as (
    select * from int_ledger
),

per_instant as (
    select
        account,
        asset,
        ledger_at as instant_at,
        sum(balance_effect) as balance_change,
        sum(principal_effect) as principal_change,
        sum(interest_effect) as interest_change
    from ledger
    where asset is not null
    group by all
),

final as (
    select
        *,
        sum(balance_change) over running as cumulative_balance,
        sum(principal_change) over running as cumulative_principal,
        sum(interest_change) over running as cumulative_interest
    from per_instant
    window running as (
        partition by account, asset order by instant_at
        rows between unbounded preceding and current row
    )
)

select * from final
