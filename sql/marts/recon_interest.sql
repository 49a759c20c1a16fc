-- Unpaid interest, per account, asset and interval (t1, t2]:
-- interest(t2) - interest(t1) = interest charged - interest repaid (CONFIRMED repays).
-- Charges paid at once in BNB (*_CONVERTED) never become unpaid interest and are not terms.
-- Term columns are signed contributions: expected_change is their sum. status: recon_status
-- (unverified where the history it needs was not read: unverified_reason says why).
-- test: unique(account, asset, interval_end, end_source)
-- test: accepted_values(status: RECON_STATUSES)
with checks as (
    select * from int_interval_checks
),

compared as (
    select
        account,
        asset,
        interval_kind,
        interval_start,
        interval_end,
        start_source,
        end_source,
        start_interest as interest_start,
        end_interest as interest_end,
        end_interest - start_interest as actual_change,
        interest_charged,
        interest_repaid,
        pending_interest_rows as pending_rows,
        pending_interest_amounts as pending_amounts,
        interest_is_checkable as is_checkable,
        interest_stamp_shifts as stamp_shifts,
        interest_unverified_reason as unverified_reason,
        is_within_late_window or interest_is_incomplete as is_within_late_window
    from checks
),

expected as (
    select
        *,
        cast(interest_charged + interest_repaid as decimal(38, 18)) as expected_change
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
        interest_start,
        interest_end,
        actual_change,
        interest_charged,
        interest_repaid,
        expected_change,
        cast(actual_change - expected_change as decimal(38, 18)) as difference,
        pending_rows,
        is_within_late_window,
        recon_status(
            actual_change - expected_change,
            is_checkable,
            pending_amounts,
            is_within_late_window,
            stamp_shifts := stamp_shifts
        ) as status,
        case when not is_checkable then unverified_reason end as unverified_reason
    from expected
)

select * from final
