-- Reconciliation intervals (interval_start, interval_end] per account and asset: consecutive
-- snapshot points, live and daily together, ordered by time then source ('daily' before
-- 'live', so a daily and a live snapshot at the same instant form a zero-length interval that
-- checks they agree). Plus, for an account whose history reaches its opening
-- (int_account_openings), an 'opening' interval from the empty account (interval_start null,
-- all start values zero) to the first snapshot.
-- test: unique(account, asset, interval_end, end_source)
with points as (
    select * from int_snapshot_points
),

openings as (
    select * from int_account_openings
),

ordered as (
    select
        *,
        lag(snapshot_at) over by_time as previous_at,
        lag(snapshot_source) over by_time as previous_source,
        lag(free) over by_time as previous_free,
        lag(locked) over by_time as previous_locked,
        lag(balance) over by_time as previous_balance,
        lag(borrowed) over by_time as previous_borrowed,
        lag(interest) over by_time as previous_interest
    from points
    window by_time as (partition by account, asset order by snapshot_at, snapshot_source)
),

snapshot_intervals as (
    select
        account,
        asset,
        'snapshots' as interval_kind,
        previous_at as interval_start,
        snapshot_at as interval_end,
        previous_source as start_source,
        snapshot_source as end_source,
        previous_free as start_free,
        previous_locked as start_locked,
        previous_balance as start_balance,
        previous_borrowed as start_borrowed,
        previous_interest as start_interest,
        free as end_free,
        locked as end_locked,
        balance as end_balance,
        borrowed as end_borrowed,
        interest as end_interest,
        is_listed as end_is_listed
    from ordered
    where previous_at is not null
),

opening_intervals as (
    select
        ordered.account,
        ordered.asset,
        'opening' as interval_kind,
        cast(null as timestamp) as interval_start,
        ordered.snapshot_at as interval_end,
        'opening' as start_source,
        ordered.snapshot_source as end_source,
        cast(0 as decimal(38, 18)) as start_free,
        cast(0 as decimal(38, 18)) as start_locked,
        cast(0 as decimal(38, 18)) as start_balance,
        cast(0 as decimal(38, 18)) as start_borrowed,
        cast(0 as decimal(38, 18)) as start_interest,
        ordered.free as end_free,
        ordered.locked as end_locked,
        ordered.balance as end_balance,
        ordered.borrowed as end_borrowed,
        ordered.interest as end_interest,
        ordered.is_listed as end_is_listed
    from ordered
    inner join openings on ordered.account = openings.account
    where ordered.previous_at is null and openings.reaches_opening
),

final as (
    select * from opening_intervals
    union all
    select * from snapshot_intervals
)

select * from final
