-- Balance (free + locked), per account, asset and interval (t1, t2]:
-- balance(t2) - balance(t1) = transfers in - out + borrows - repays (principal and interest)
-- + trade legs (base and quote, buyer or seller) - commissions + liquidation fills
-- - interest paid at once in BNB. CONFIRMED rows only.
-- Term columns are signed contributions: expected_change is their sum.
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
        pending_balance_rows as pending_rows,
        is_within_late_window
    from checks
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
