-- The newest fetch of each account (any stream): rows of an interval ending within the
-- late-arrival window before it may still arrive, so such an interval is only provisional.
-- Read from the raw sources: the newest fetch of any row is also the newest of its latest
-- version, and a column scan is much cheaper than the staging dedup.
with loans as (
    select
        _account as account,
        _fetched_at
    from src_loans
),

repays as (
    select
        _account as account,
        _fetched_at
    from src_repays
),

interest as (
    select
        _account as account,
        _fetched_at
    from src_interest
),

transfers as (
    select
        _account as account,
        _fetched_at
    from src_transfers
),

liquidations as (
    select
        _account as account,
        _fetched_at
    from src_liquidations
),

orders as (
    select
        _account as account,
        _fetched_at
    from src_orders
),

trades as (
    select
        _account as account,
        _fetched_at
    from src_trades
),

snapshots as (
    select
        _account as account,
        _fetched_at
    from src_account_snapshots
),

fetches as (
    select * from loans
    union all
    select * from repays
    union all
    select * from interest
    union all
    select * from transfers
    union all
    select * from liquidations
    union all
    select * from orders
    union all
    select * from trades
    union all
    select * from snapshots
),

final as (
    select
        account,
        timezone('UTC', max(_fetched_at)) as newest_fetched_at
    from fetches
    group by account
)

select * from final
