-- materialized: view
-- Every reconciliation interval beside the ledger's terms summed over it (zero where the
-- ledger has none), and whether it ends inside the late-arrival window of the account's newest
-- fetch: what recon_principal, recon_interest and recon_balances each compare.
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
        coalesce(terms.pending_principal_rows, 0) as pending_principal_rows,
        coalesce(terms.pending_interest_rows, 0) as pending_interest_rows,
        coalesce(terms.pending_balance_rows, 0) as pending_balance_rows,
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
)

select * from final
