-- Where a live snapshot may really have been taken, as the differences that would make.
-- A live snapshot (/margin/account) carries no time of its own: the export stamps it with the
-- server clock as the client knows it, which may be seconds off (a skewed time answer, a
-- slow one). The snapshot is still the account at one instant within stamp_tolerance of its
-- stamp: it missed every line between that instant and a later stamp, or saw every line
-- between an earlier stamp and it. Per account, asset and live instant, and per figure: the
-- shift of the difference of the interval that ends there for each such instant, walking
-- outward from the stamp one ledger instant at a time (0 for the stamp itself; a line at or
-- before the stamp shifts it by -effect, the snapshot having missed it; one after by
-- +effect, the snapshot having seen it). The interval that starts there sees each negated.
-- recon_status matches a difference that one of them equals (is_stamp_shift).
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
        ledger.ledger_at,
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

-- the lines of one instant move together: no time tells them apart
instants as (
    select
        account,
        asset,
        live_at,
        side,
        ledger_at,
        sum(side * principal_effect) as principal_shift,
        sum(side * interest_effect) as interest_shift,
        sum(side * balance_effect) as balance_shift
    from near
    group by account, asset, live_at, side, ledger_at
),

-- outward from the stamp: backwards in time before it, forwards after it
walked as (
    select
        account,
        asset,
        live_at,
        sum(principal_shift) over outward as principal_shift,
        sum(interest_shift) over outward as interest_shift,
        sum(balance_shift) over outward as balance_shift
    from instants
    window outward as (
        partition by account, asset, live_at, side
        order by side * epoch_ms(ledger_at)
        rows between unbounded preceding and current row
    )
),

final as (
    select
        account,
        asset,
        live_at,
        list_sort(list_distinct(list_append(list(principal_shift), cast(0 as decimal(38, 18)))))
            as principal_shifts,
        list_sort(list_distinct(list_append(list(interest_shift), cast(0 as decimal(38, 18)))))
            as interest_shifts,
        list_sort(list_distinct(list_append(list(balance_shift), cast(0 as decimal(38, 18)))))
            as balance_shifts
    from walked
    group by account, asset, live_at
)

select * from final
