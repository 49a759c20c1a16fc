-- The ledger summed per reconciliation interval and term. Each ledger line belongs to the
-- interval (previous snapshot instant, next snapshot instant] of its account and asset
-- (an as-of join); lines before an account's first snapshot get interval_start null, which
-- only the 'opening' interval uses. Lines after the last snapshot are not reconciled yet.
-- Every term is a signed contribution; terms count CONFIRMED lines only. The PENDING lines
-- touching each side are counted, and the young PENDING rows' effects listed per side
-- (pending_*_amounts, int_pending_rows): a difference they add up to is provisional.
with ledger as (
    select * from int_ledger
),

pending_rows as (
    select * from int_pending_rows
),

points as (
    select * from int_snapshot_points
),

instants as (
    select distinct
        account,
        asset,
        snapshot_at
    from points
),

bounds as (
    select
        account,
        asset,
        lag(snapshot_at) over (partition by account, asset order by snapshot_at)
            as interval_start,
        snapshot_at as interval_end
    from instants
),

-- The lines meet the intervals summed per hour (int_ledger_hours): the as-of join then sorts
-- the hours, not the lines. An hour with a snapshot instant inside it (its last line is after
-- the end of its first line's interval) is assigned line by line instead.
hours as (
    select * from int_ledger_hours
),

hour_starts as (
    select
        hours.*,
        bounds.interval_start,
        bounds.interval_end
    from hours
    asof left join bounds
        on hours.account = bounds.account
        and hours.asset = bounds.asset
        and bounds.interval_end >= hours.first_at
),

-- an hour whose first line has no interval is after the last snapshot: not reconciled yet
split_hours as (
    select
        account,
        asset,
        entry_type,
        status,
        ledger_hour
    from hour_starts
    where last_at > interval_end
),

split_lines as (
    select ledger.*
    from ledger
    semi join split_hours
        on ledger.account = split_hours.account
        and ledger.asset = split_hours.asset
        and ledger.entry_type = split_hours.entry_type
        and ledger.status is not distinct from split_hours.status
        and date_trunc('hour', ledger.ledger_at) = split_hours.ledger_hour
),

-- the lines of the split hours, each in its interval, in the shape of an hour of its own
assigned_lines as (
    select
        split_lines.account,
        split_lines.asset,
        bounds.interval_start,
        bounds.interval_end,
        split_lines.entry_type,
        split_lines.status,
        split_lines.balance_effect as balance_effects,
        split_lines.principal_effect as principal_effects,
        split_lines.interest_effect as interest_effects,
        cast(split_lines.principal_effect <> 0 as int) as principal_rows,
        cast(split_lines.interest_effect <> 0 as int) as interest_rows,
        cast(split_lines.balance_effect <> 0 as int) as balance_rows,
        1 as ledger_rows
    from split_lines
    asof inner join bounds
        on split_lines.account = bounds.account
        and split_lines.asset = bounds.asset
        and bounds.interval_end >= split_lines.ledger_at
),

whole_hours as (
    select * exclude (ledger_hour, first_at, last_at)
    from hour_starts
    where last_at <= interval_end
),

-- each young PENDING row's effects, listed per interval and side
young_pending as (
    select
        pending_rows.account,
        pending_rows.asset,
        bounds.interval_start,
        bounds.interval_end,
        list(pending_rows.principal_effect order by pending_rows.principal_effect) filter (
            where pending_rows.principal_effect <> 0
        ) as pending_principal_amounts,
        list(pending_rows.interest_effect order by pending_rows.interest_effect) filter (
            where pending_rows.interest_effect <> 0
        ) as pending_interest_amounts,
        list(pending_rows.balance_effect order by pending_rows.balance_effect) filter (
            where pending_rows.balance_effect <> 0
        ) as pending_balance_amounts
    from pending_rows
    asof inner join bounds
        on pending_rows.account = bounds.account
        and pending_rows.asset = bounds.asset
        and bounds.interval_end >= pending_rows.ledger_at
    where pending_rows.is_young
    group by all
),

-- three sums per line, then a pivot of the small result (13 filtered sums per line cost more)
by_type as (
    select
        account,
        asset,
        interval_start,
        interval_end,
        entry_type,
        status,
        sum(balance_effects) as balance_effects,
        sum(principal_effects) as principal_effects,
        sum(interest_effects) as interest_effects,
        sum(principal_rows) as principal_rows,
        sum(interest_rows) as interest_rows,
        sum(balance_rows) as balance_rows,
        sum(ledger_rows) as ledger_rows
    from (
        select * from whole_hours
        union all by name
        select * from assigned_lines
    ) as hour_and_line_terms
    group by all
),

-- a term counts CONFIRMED lines only
terms as (
    select
        *,
        case when status = 'CONFIRMED' then entry_type end as confirmed_type,
        status = 'PENDING' as is_pending
    from by_type
),

summed as (
    select
        account,
        asset,
        interval_start,
        interval_end,
        coalesce(sum(principal_effects) filter (where confirmed_type = 'BORROW'), 0)
            as principal_borrowed,
        coalesce(sum(principal_effects) filter (where confirmed_type = 'REPAY_PRINCIPAL'), 0)
            as principal_repaid,
        coalesce(sum(interest_effects) filter (where confirmed_type = 'INTEREST'), 0)
            as interest_charged,
        coalesce(sum(interest_effects) filter (where confirmed_type = 'REPAY_INTEREST'), 0)
            as interest_repaid,
        coalesce(sum(balance_effects) filter (where confirmed_type = 'TRANSFER_IN'), 0)
            as balance_transfers_in,
        coalesce(sum(balance_effects) filter (where confirmed_type = 'TRANSFER_OUT'), 0)
            as balance_transfers_out,
        coalesce(sum(balance_effects) filter (where confirmed_type = 'BORROW'), 0)
            as balance_borrowed,
        coalesce(sum(balance_effects) filter (where confirmed_type = 'REPAY_PRINCIPAL'), 0)
            as balance_repaid_principal,
        coalesce(sum(balance_effects) filter (where confirmed_type = 'REPAY_INTEREST'), 0)
            as balance_repaid_interest,
        coalesce(sum(balance_effects) filter (
            where confirmed_type in ('TRADE_BASE', 'TRADE_QUOTE')
        ), 0) as balance_trades,
        coalesce(sum(balance_effects) filter (where confirmed_type = 'COMMISSION'), 0)
            as balance_commissions,
        coalesce(sum(balance_effects) filter (
            where confirmed_type in ('LIQUIDATION_BASE', 'LIQUIDATION_QUOTE')
        ), 0) as balance_liquidations,
        coalesce(sum(balance_effects) filter (where confirmed_type = 'INTEREST_CONVERTED'), 0)
            as balance_interest_converted,
        coalesce(sum(balance_effects) filter (where confirmed_type = 'LIQUIDATION_FEE'), 0)
            as balance_liquidation_fees,
        coalesce(sum(balance_effects) filter (where confirmed_type = 'CONVERSION'), 0)
            as balance_conversions,
        coalesce(sum(balance_effects) filter (where confirmed_type = 'REPAY_DEBIT'), 0)
            as balance_repay_debits,
        coalesce(sum(balance_effects) filter (
            where confirmed_type in ('COMMISSION_RETURN', 'LIQUIDATION_OTHER')
        ), 0) as balance_other,
        cast(coalesce(sum(principal_rows) filter (where is_pending), 0) as bigint)
            as pending_principal_rows,
        cast(coalesce(sum(interest_rows) filter (where is_pending), 0) as bigint)
            as pending_interest_rows,
        cast(coalesce(sum(balance_rows) filter (where is_pending), 0) as bigint)
            as pending_balance_rows,
        cast(sum(ledger_rows) as bigint) as ledger_rows
    from terms
    group by account, asset, interval_start, interval_end
),

final as (
    select
        summed.*,
        young_pending.pending_principal_amounts,
        young_pending.pending_interest_amounts,
        young_pending.pending_balance_amounts
    from summed
    left join young_pending
        on summed.account = young_pending.account
        and summed.asset = young_pending.asset
        and summed.interval_start is not distinct from young_pending.interval_start
        and summed.interval_end = young_pending.interval_end
)

select * from final
