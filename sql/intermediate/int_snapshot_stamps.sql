-- The CONFIRMED ledger lines near each live snapshot, whose side of it its time cannot prove.
-- A live snapshot (/margin/account) carries no time of its own: the export stamps it with the
-- server clock as the client knows it, which may be seconds off (a skewed time answer, a
-- slow one), so a line within stamp_tolerance of it may lie on the other side. Per account,
-- asset and live instant: each such line's effect as it would change the difference of the
-- interval that ends there (-effect for a line at or before the stamp, the snapshot having
-- missed it; +effect for one after, the snapshot having seen it). The interval that starts
-- there sees the negation. recon_status matches a difference that a few of these add up to
-- (is_stamp_shift): the snapshot agrees with the ledger at an instant within its tolerance.
-- test: unique(account, asset, live_at)
with ledger as (
    select * from int_ledger
),

points as (
    select * from int_snapshot_points
),

live as (
    select distinct
        account,
        snapshot_at as live_at
    from points
    where snapshot_source = 'live'
),

near as (
    select
        ledger.account,
        ledger.asset,
        live.live_at,
        case when ledger.ledger_at <= live.live_at then -1 else 1 end as side,
        ledger.principal_effect,
        ledger.interest_effect,
        ledger.balance_effect
    from ledger
    inner join live
        on ledger.account = live.account
        and ledger.ledger_at > live.live_at - stamp_tolerance()
        and ledger.ledger_at <= live.live_at + stamp_tolerance()
    where ledger.status = 'CONFIRMED'
),

final as (
    select
        account,
        asset,
        live_at,
        list(side * principal_effect) filter (where principal_effect <> 0)
            as principal_shifts,
        list(side * interest_effect) filter (where interest_effect <> 0) as interest_shifts,
        list(side * balance_effect) filter (where balance_effect <> 0) as balance_shifts
    from near
    group by account, asset, live_at
)

select * from final
