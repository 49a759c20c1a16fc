-- Principal, per account, asset and interval (t1, t2]:
-- borrowed(t2) - borrowed(t1) = loans' principal - repaid principal (CONFIRMED rows only).
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
        start_borrowed as borrowed_start,
        end_borrowed as borrowed_end,
        end_borrowed - start_borrowed as actual_change,
        principal_borrowed as loans_principal,
        principal_repaid as repaid_principal,
        pending_principal_rows as pending_rows,
        pending_principal_amounts as pending_amounts,
        principal_is_checkable as is_checkable,
        principal_stamp_shifts as stamp_shifts,
        principal_unverified_reason as unverified_reason,
        is_within_late_window or principal_is_incomplete as is_within_late_window
    from checks
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
