-- Balance (free + locked), per account, asset and interval (t1, t2]:
-- balance(t2) - balance(t1) = transfers in - out + borrows - repays (principal and interest,
-- where paid in the asset) + trade legs (base and quote, buyer or seller) - commissions
-- + liquidation fills - liquidation fees - interest paid at once in BNB + conversions
-- - what repays paid in this asset for another one (BNB) + other capital-flow movements.
-- CONFIRMED rows only. Term columns are signed contributions: expected_change is their sum.
-- status: recon_status (unverified where the history it needs was not read).
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
        start_balance as balance_start,
        end_balance as balance_end,
        end_balance - start_balance as actual_change,
        balance_transfers_in as transfers_in,
        balance_transfers_out as transfers_out,
        balance_borrowed as borrowed,
        balance_repaid_principal as repaid_principal,
        balance_repaid_interest as repaid_interest,
        balance_trades as trades,
        balance_commissions as commissions,
        balance_liquidations as liquidations,
        balance_interest_converted as interest_converted,
        balance_liquidation_fees as liquidation_fees,
        balance_conversions as conversions,
        balance_repay_debits as repay_debits,
        balance_other as other_movements,
        pending_balance_rows as pending_rows,
        pending_balance_amounts as pending_amounts,
        balance_is_checkable as is_checkable,
        balance_stamp_shifts as stamp_shifts,
        balance_unverified_reason as unverified_reason,
        is_within_late_window or balance_is_incomplete as is_within_late_window
    from checks
),

expected as (
    select
        *,
        cast(
            transfers_in + transfers_out + borrowed + repaid_principal + repaid_interest
            + trades + commissions + liquidations + interest_converted + liquidation_fees
            + conversions + repay_debits + other_movements
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
        is_within_late_window,
        recon_status(
            actual_change - expected_change,
            is_checkable,
            pending_amounts,
            is_within_late_window,
            stamp_shifts := stamp_shifts
        ) as status,
        liquidation_fees,
        conversions,
        repay_debits,
        other_movements,
        case when not is_checkable then unverified_reason end as unverified_reason
    from expected
)

select * from final
