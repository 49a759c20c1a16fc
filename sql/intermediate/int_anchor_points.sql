-- Every snapshot instant of each account and asset as a point positions can be anchored at:
-- the snapshot's balance, borrowed and interest, beside the ledger's running sums up to and
-- including that instant (int_ledger_instants). A position at t anchored at point a is
-- value(a) + cumulative(t) - cumulative(a), before or after a. At an instant with a daily and
-- a live snapshot, the live one.
-- test: unique(account, asset, anchor_at)
with points as (
    select * from int_snapshot_points
),

instants as (
    select * from int_ledger_instants
),

per_instant as (
    select *
    from points
    qualify row_number() over (
        partition by account, asset, snapshot_at order by snapshot_source desc
    ) = 1
),

final as (
    select
        per_instant.account,
        per_instant.asset,
        per_instant.snapshot_at as anchor_at,
        per_instant.snapshot_source as anchor_source,
        per_instant.balance,
        per_instant.borrowed,
        per_instant.interest,
        coalesce(instants.cumulative_balance, 0) as cumulative_balance,
        coalesce(instants.cumulative_principal, 0) as cumulative_principal,
        coalesce(instants.cumulative_interest, 0) as cumulative_interest
    from per_instant
    asof left join instants
        on per_instant.account = instants.account
        and per_instant.asset = instants.asset
        and instants.instant_at <= per_instant.snapshot_at
)

select * from final
