-- Balance (free + locked), per account, asset and interval (t1, t2]:
-- balance(t2) - balance(t1) = transfers in - out + borrows - repays (principal and interest)
-- + trade legs (base and quote, buyer or seller) - commissions + liquidation fills
-- - interest paid at once in BNB. CONFIRMED rows only.
-- Term columns are signed contributions: expected_change is their sum.
with intervals as (
    select * from int_snapshot_intervals
),

terms as (
    select * from int_interval_terms
),

horizon as (
    select * from int_fetch_horizon
),

settings as (
    select * from recon_settings
),

compared as (
    select
        intervals.account,
        intervals.asset,
        intervals.interval_kind,
        intervals.interval_start,
        intervals.interval_end,
        intervals.start_source,
        intervals.end_source,
        intervals.start_balance as balance_start,
        intervals.end_balance as balance_end,
        intervals.end_balance - intervals.start_balance as actual_change,
        coalesce(terms.balance_transfers_in, 0) as transfers_in,
        coalesce(terms.balance_transfers_out, 0) as transfers_out,
        coalesce(terms.balance_borrowed, 0) as borrowed,
        coalesce(terms.balance_repaid_principal, 0) as repaid_principal,
        coalesce(terms.balance_repaid_interest, 0) as repaid_interest,
        coalesce(terms.balance_trades, 0) as trades,
        coalesce(terms.balance_commissions, 0) as commissions,
        coalesce(terms.balance_liquidations, 0) as liquidations,
        coalesce(terms.balance_interest_converted, 0) as interest_converted,
        coalesce(terms.pending_balance_rows, 0) as pending_rows,
        intervals.interval_end
        > horizon.newest_fetched_at - to_hours(settings.late_window_hours)
            as is_within_late_window
    from intervals
    left join terms
        on intervals.account = terms.account
        and intervals.asset = terms.asset
        and intervals.interval_start is not distinct from terms.interval_start
        and intervals.interval_end = terms.interval_end
    left join horizon on intervals.account = horizon.account
    cross join settings
),

expected as (
    select
        *,
        cast(
            transfers_in + transfers_out + borrowed + repaid_principal + repaid_interest
            + trades + commissions + liquidations + interest_converted
            as decimal(38, 18)
        ) as expected_change
    from compared
),

final as (
    select
        account,
        asset,
        interval_kind,
        interval_start,
        interval_end,
        start_source,
        end_source,
        balance_start,
        balance_end,
        actual_change,
        transfers_in,
        transfers_out,
        borrowed,
        repaid_principal,
        repaid_interest,
        trades,
        commissions,
        liquidations,
        interest_converted,
        expected_change,
        cast(actual_change - expected_change as decimal(38, 18)) as difference,
        pending_rows,
        coalesce(is_within_late_window, false) as is_within_late_window,
        recon_status(actual_change - expected_change, pending_rows, is_within_late_window)
            as status
    from expected
)

select * from final
