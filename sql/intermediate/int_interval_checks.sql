-- materialized: view
-- Every reconciliation interval beside the ledger's terms summed over it (zero where the
-- ledger has none), whether it ends inside the late-arrival window of the account's newest
-- fetch, and per figure whether it can be verified (int_figure_coverage): the opening
-- interval where the figure is anchored at the opening, a snapshot interval that starts in
-- the span the figure's streams were read completely (else `unverified`, with the reason).
-- One that ends past what was read (`<figure>_is_incomplete`: a live snapshot taken a few
-- milliseconds after the reads ended) is checked, but like one in the late window. Per figure,
-- the differences a live snapshot's stamp at either end can explain (`<figure>_stamp_shifts`,
-- int_snapshot_stamps, signed for this interval). The one input of recon_principal,
-- recon_interest and recon_balances.
with intervals as (
    select * from int_snapshot_intervals
),

terms as (
    select * from int_interval_terms
),

figures as (
    select * from int_figure_coverage
),

horizon as (
    select * from int_fetch_horizon
),

settings as (
    select * from recon_settings
),

stamps as (
    select * from int_snapshot_stamps
),

-- the interval that starts at a live snapshot sees each shift negated
stamps_from_start as (
    select
        account,
        asset,
        live_at,
        list_transform(principal_shifts, lambda shift: -shift) as principal_shifts,  -- noqa: PRS
        list_transform(interest_shifts, lambda shift: -shift) as interest_shifts,  -- noqa: PRS
        list_transform(balance_shifts, lambda shift: -shift) as balance_shifts  -- noqa: PRS
    from stamps
),

checked as (
    select
        intervals.*,
        figures.figure,
        coalesce(
            case
                when intervals.interval_kind = 'opening' then figures.anchor_kind = 'opening'
                else
                    figures.anchor_kind <> 'none'
                    and intervals.interval_start >= figures.verified_from
            end
            and coalesce(intervals.interval_start, intervals.interval_end) < figures.verified_to,
            false
        ) as is_checkable,
        -- ends past what was read: rows may be missing at its end, like late rows
        coalesce(intervals.interval_end > figures.verified_to, false) as is_incomplete,
        case
            when figures.anchor_kind = 'none' or figures.anchor_kind is null
                then coalesce(figures.reason, 'nothing read for this asset')
            when intervals.interval_kind = 'opening' and figures.anchor_kind <> 'opening'
                then 'opening not proven: ' || figures.reason
            when intervals.interval_start < figures.verified_from
                then 'before ' || iso_utc(figures.verified_from) || ': ' || figures.reason
            when coalesce(intervals.interval_start, intervals.interval_end) >= figures.verified_to
                then
                    'after ' || iso_utc(figures.verified_to)
                    || ', where what it needs was read up to'
        end as unverified_reason
    from intervals
    left join figures
        on intervals.account = figures.account
        and intervals.asset = figures.asset
),

pivoted as (
    select
        account,
        asset,
        interval_start,
        interval_end,
        end_source,
        bool_or(is_checkable) filter (where figure = 'principal') as principal_is_checkable,
        bool_or(is_checkable) filter (where figure = 'interest') as interest_is_checkable,
        bool_or(is_checkable) filter (where figure = 'balance') as balance_is_checkable,
        bool_or(is_incomplete) filter (where figure = 'principal') as principal_is_incomplete,
        bool_or(is_incomplete) filter (where figure = 'interest') as interest_is_incomplete,
        bool_or(is_incomplete) filter (where figure = 'balance') as balance_is_incomplete,
        any_value(unverified_reason) filter (where figure = 'principal')
            as principal_unverified_reason,
        any_value(unverified_reason) filter (where figure = 'interest')
            as interest_unverified_reason,
        any_value(unverified_reason) filter (where figure = 'balance')
            as balance_unverified_reason
    from checked
    group by account, asset, interval_start, interval_end, end_source
),

final as (
    select
        intervals.*,
        coalesce(terms.principal_borrowed, 0) as principal_borrowed,
        coalesce(terms.principal_repaid, 0) as principal_repaid,
        coalesce(terms.interest_charged, 0) as interest_charged,
        coalesce(terms.interest_repaid, 0) as interest_repaid,
        coalesce(terms.balance_transfers_in, 0) as balance_transfers_in,
        coalesce(terms.balance_transfers_out, 0) as balance_transfers_out,
        coalesce(terms.balance_borrowed, 0) as balance_borrowed,
        coalesce(terms.balance_repaid_principal, 0) as balance_repaid_principal,
        coalesce(terms.balance_repaid_interest, 0) as balance_repaid_interest,
        coalesce(terms.balance_trades, 0) as balance_trades,
        coalesce(terms.balance_commissions, 0) as balance_commissions,
        coalesce(terms.balance_liquidations, 0) as balance_liquidations,
        coalesce(terms.balance_interest_converted, 0) as balance_interest_converted,
        coalesce(terms.balance_liquidation_fees, 0) as balance_liquidation_fees,
        coalesce(terms.balance_conversions, 0) as balance_conversions,
        coalesce(terms.balance_repay_debits, 0) as balance_repay_debits,
        coalesce(terms.balance_other, 0) as balance_other,
        coalesce(terms.pending_principal_rows, 0) as pending_principal_rows,
        coalesce(terms.pending_interest_rows, 0) as pending_interest_rows,
        coalesce(terms.pending_balance_rows, 0) as pending_balance_rows,
        terms.pending_principal_amounts,
        terms.pending_interest_amounts,
        terms.pending_balance_amounts,
        coalesce(pivoted.principal_is_checkable, false) as principal_is_checkable,
        coalesce(pivoted.interest_is_checkable, false) as interest_is_checkable,
        coalesce(pivoted.balance_is_checkable, false) as balance_is_checkable,
        pivoted.principal_unverified_reason,
        pivoted.interest_unverified_reason,
        pivoted.balance_unverified_reason,
        coalesce(pivoted.principal_is_incomplete, false) as principal_is_incomplete,
        coalesce(pivoted.interest_is_incomplete, false) as interest_is_incomplete,
        coalesce(pivoted.balance_is_incomplete, false) as balance_is_incomplete,
        coalesce(
            intervals.interval_end
            > horizon.newest_fetched_at - to_hours(settings.late_window_hours),
            false
        ) as is_within_late_window,
        both_ends_shifts(ends.principal_shifts, starts.principal_shifts) as principal_stamp_shifts,
        both_ends_shifts(ends.interest_shifts, starts.interest_shifts) as interest_stamp_shifts,
        both_ends_shifts(ends.balance_shifts, starts.balance_shifts) as balance_stamp_shifts
    from intervals
    left join terms
        on intervals.account = terms.account
        and intervals.asset = terms.asset
        and intervals.interval_start is not distinct from terms.interval_start
        and intervals.interval_end = terms.interval_end
    left join pivoted
        on intervals.account = pivoted.account
        and intervals.asset = pivoted.asset
        and intervals.interval_start is not distinct from pivoted.interval_start
        and intervals.interval_end = pivoted.interval_end
        and intervals.end_source = pivoted.end_source
    left join horizon on intervals.account = horizon.account
    left join stamps as ends
        on intervals.end_source = 'live'
        and intervals.account = ends.account
        and intervals.asset = ends.asset
        and intervals.interval_end = ends.live_at
    left join stamps_from_start as starts
        on intervals.start_source = 'live'
        and intervals.account = starts.account
        and intervals.asset = starts.asset
        and intervals.interval_start = starts.live_at
    cross join settings
)

select * from final
