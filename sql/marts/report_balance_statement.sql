-- materialized: view
-- Balance statement (free + locked) per account, asset and month: opening, movements by type,
-- closing, and the month's last snapshot against the ledger's balance at that instant.
-- Balances come from the running positions (int_positions, anchored by
-- int_position_anchors), so opening and closing are known even between snapshots. Movements
-- include PENDING lines (their effect happened); FAILED rows never enter the ledger.
-- Signed movement columns: closing_balance = opening_balance + their sum.
-- Then (columns added later): how the closing balance is tied (statement_days at the month's
-- last instant): to which snapshot, or unverified / break and why.
with ledger as (
    select * from int_ledger
),

positions as (
    select * from int_positions
),

anchors as (
    select * from int_position_anchors
),

points as (
    select * from int_snapshot_points
),

days as (
    select * from statement_days
),

activity as (
    select
        account,
        ledger_at as happened_at
    from ledger
    union all
    select
        account,
        snapshot_at as happened_at
    from points
),

months as (
    select
        account,
        unnest(generate_series(
            date_trunc('month', min(happened_at)),
            date_trunc('month', max(happened_at)),
            interval 1 month
        )) as month_start
    from activity
    group by account
),

spine as (
    select
        months.account,
        anchors.asset,
        cast(months.month_start as timestamp) as month_start,
        cast(months.month_start + interval 1 month as timestamp) as month_end,
        anchors.anchor_kind,
        anchors.baseline_balance
    from months
    inner join anchors on months.account = anchors.account
),

movements as (
    select
        account,
        asset,
        cast(date_trunc('month', ledger_at) as timestamp) as month_start,
        sum(balance_effect) filter (where entry_type = 'TRANSFER_IN') as transfers_in,
        sum(balance_effect) filter (where entry_type = 'TRANSFER_OUT') as transfers_out,
        sum(balance_effect) filter (where entry_type = 'BORROW') as borrowed,
        sum(balance_effect) filter (where entry_type = 'REPAY_PRINCIPAL') as repaid_principal,
        sum(balance_effect) filter (where entry_type = 'REPAY_INTEREST') as repaid_interest,
        sum(balance_effect) filter (where entry_type in ('TRADE_BASE', 'TRADE_QUOTE')) as trades,
        sum(balance_effect) filter (where entry_type = 'COMMISSION') as commissions,
        sum(balance_effect) filter (
            where entry_type in ('LIQUIDATION_BASE', 'LIQUIDATION_QUOTE')
        ) as liquidations,
        sum(balance_effect) filter (where entry_type = 'INTEREST_CONVERTED')
            as interest_converted,
        sum(balance_effect) as total_movement,
        count(*) filter (where status = 'PENDING') as pending_rows
    from ledger
    where asset is not null
    group by all
),

opening as (
    select
        spine.*,
        coalesce(positions.balance, spine.baseline_balance) as opening_balance
    from spine
    asof left join positions
        on spine.account = positions.account
        and spine.asset = positions.asset
        and positions.position_at < spine.month_start
),

month_snapshots as (
    select
        *,
        cast(date_trunc('month', snapshot_at) as timestamp) as month_start
    from points
    qualify row_number() over (
        partition by account, asset, date_trunc('month', snapshot_at)
        order by snapshot_at desc, snapshot_source desc
    ) = 1
),

snapshot_checks as (
    select
        month_snapshots.*,
        coalesce(positions.balance, anchors.baseline_balance) as ledger_balance
    from month_snapshots
    asof left join positions
        on month_snapshots.account = positions.account
        and month_snapshots.asset = positions.asset
        and positions.position_at <= month_snapshots.snapshot_at
    left join anchors
        on month_snapshots.account = anchors.account
        and month_snapshots.asset = anchors.asset
),

final as (
    select
        opening.account,
        strftime(opening.month_start, '%Y-%m') as month,
        opening.asset,
        opening.anchor_kind,
        cast(opening.opening_balance as decimal(38, 18)) as opening_balance,
        cast(coalesce(movements.transfers_in, 0) as decimal(38, 18)) as transfers_in,
        cast(coalesce(movements.transfers_out, 0) as decimal(38, 18)) as transfers_out,
        cast(coalesce(movements.borrowed, 0) as decimal(38, 18)) as borrowed,
        cast(coalesce(movements.repaid_principal, 0) as decimal(38, 18)) as repaid_principal,
        cast(coalesce(movements.repaid_interest, 0) as decimal(38, 18)) as repaid_interest,
        cast(coalesce(movements.trades, 0) as decimal(38, 18)) as trades,
        cast(coalesce(movements.commissions, 0) as decimal(38, 18)) as commissions,
        cast(coalesce(movements.liquidations, 0) as decimal(38, 18)) as liquidations,
        cast(coalesce(movements.interest_converted, 0) as decimal(38, 18))
            as interest_converted,
        cast(
            opening.opening_balance + coalesce(movements.total_movement, 0)
            as decimal(38, 18)
        ) as closing_balance,
        coalesce(movements.pending_rows, 0) as pending_rows,
        snapshot_checks.snapshot_at as snapshot_time,
        snapshot_checks.snapshot_source,
        snapshot_checks.balance as snapshot_balance,
        cast(snapshot_checks.ledger_balance as decimal(38, 18)) as ledger_balance_at_snapshot,
        cast(snapshot_checks.balance - snapshot_checks.ledger_balance as decimal(38, 18))
            as difference,
        days.tie_status,
        days.tied_to,
        days.tie_reason
    from opening
    left join movements
        on opening.account = movements.account
        and opening.asset = movements.asset
        and opening.month_start = movements.month_start
    left join snapshot_checks
        on opening.account = snapshot_checks.account
        and opening.asset = snapshot_checks.asset
        and opening.month_start = snapshot_checks.month_start
    left join days
        on opening.account = days.account
        and opening.asset = days.asset
        and days.day = last_day(opening.month_start)
)

select * from final
