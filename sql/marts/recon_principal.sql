-- Principal, per account, asset and interval (t1, t2]:
-- borrowed(t2) - borrowed(t1) = loans' principal - repaid principal (CONFIRMED rows only).
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
        intervals.start_borrowed as borrowed_start,
        intervals.end_borrowed as borrowed_end,
        intervals.end_borrowed - intervals.start_borrowed as actual_change,
        coalesce(terms.principal_borrowed, 0) as loans_principal,
        coalesce(terms.principal_repaid, 0) as repaid_principal,
        coalesce(terms.pending_principal_rows, 0) as pending_rows,
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
        cast(loans_principal + repaid_principal as decimal(38, 18)) as expected_change
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
        borrowed_start,
        borrowed_end,
        actual_change,
        loans_principal,
        repaid_principal,
        expected_change,
        cast(actual_change - expected_change as decimal(38, 18)) as difference,
        pending_rows,
        coalesce(is_within_late_window, false) as is_within_late_window,
        recon_status(actual_change - expected_change, pending_rows, is_within_late_window)
            as status
    from expected
)

select * from final
