-- Every reconciliation row that does not match, in one shape: principal, interest and balance
-- intervals, plus the interest audit's mismatches (a charge not equal to its recomputation:
-- 'interest_charge'; an hour's charged principal not equal to the ledger's: 'interest_principal').
-- status is 'break' or 'provisional' (see recon_status); `terms` lists the terms of the
-- expected side (the balance's non-zero ones), so a person sees where to look.
-- test: accepted_values(kind: BREAK_KINDS)
-- test: accepted_values(status: break, provisional)
with principal as (
    select * from recon_principal
),

interest as (
    select * from recon_interest
),

balances as (
    select * from recon_balances
),

audit as (
    select * from interest_audit
),

-- each recon mart's own start and end values and terms, the rest of its row in common
interval_rows as (
    select
        'principal' as kind,
        borrowed_start as value_start,
        borrowed_end as value_end,
        concat_ws(
            '; ',
            term('loans_principal', loans_principal),
            term('repaid_principal', repaid_principal)
        ) as terms,
        *
    from principal
    union all by name
    select
        'interest' as kind,
        interest_start as value_start,
        interest_end as value_end,
        concat_ws(
            '; ',
            term('interest_charged', interest_charged),
            term('interest_repaid', interest_repaid)
        ) as terms,
        *
    from interest
    union all by name
    select
        'balance' as kind,
        balance_start as value_start,
        balance_end as value_end,
        concat_ws(
            '; ',
            nonzero_term('transfers_in', transfers_in),
            nonzero_term('transfers_out', transfers_out),
            nonzero_term('borrowed', borrowed),
            nonzero_term('repaid_principal', repaid_principal),
            nonzero_term('repaid_interest', repaid_interest),
            nonzero_term('trades', trades),
            nonzero_term('commissions', commissions),
            nonzero_term('liquidations', liquidations),
            nonzero_term('interest_converted', interest_converted)
        ) as terms,
        *
    from balances
),

interval_breaks as (
    select
        account,
        kind,
        asset,
        interval_kind,
        interval_start,
        interval_end,
        start_source,
        end_source,
        value_start,
        value_end,
        expected_change as expected,
        actual_change as actual,
        difference,
        pending_rows,
        status,
        terms
    from interval_rows
    where status <> 'matched'
),

charge_breaks as (
    select
        account,
        'interest_charge' as kind,
        asset,
        'charge' as interval_kind,
        accrued_at as interval_start,
        accrued_at as interval_end,
        cast(null as varchar) as start_source,
        cast(null as varchar) as end_source,
        cast(null as decimal(38, 18)) as value_start,
        cast(null as decimal(38, 18)) as value_end,
        expected_interest as expected,
        interest as actual,
        charge_difference as difference,
        0 as pending_rows,
        recon_status(charge_difference, 0, is_within_late_window) as status,
        concat_ws(
            '; ',
            'interest_key=' || interest_key,
            'type=' || interest_type,
            term('principal', principal),
            term('interest_rate', interest_rate)
        ) as terms
    from audit
    where is_audited and charge_difference <> 0
),

audited_hours as (
    select distinct
        account,
        borrowed_asset,
        accrued_at,
        interest_type like 'ON_BORROW%' as is_on_borrow,
        charges_in_hour,
        charged_principal,
        ledger_principal,
        principal_difference,
        is_within_late_window
    from audit
    where is_audited and principal_difference <> 0
),

principal_hour_breaks as (
    select
        account,
        'interest_principal' as kind,
        borrowed_asset as asset,
        'charge' as interval_kind,
        accrued_at as interval_start,
        accrued_at as interval_end,
        cast(null as varchar) as start_source,
        cast(null as varchar) as end_source,
        cast(null as decimal(38, 18)) as value_start,
        cast(null as decimal(38, 18)) as value_end,
        ledger_principal as expected,
        charged_principal as actual,
        principal_difference as difference,
        0 as pending_rows,
        recon_status(principal_difference, 0, is_within_late_window) as status,
        concat_ws(
            '; ',
            'charges=' || charges_in_hour,
            case when is_on_borrow then 'kind=ON_BORROW' else 'kind=PERIODIC' end
        ) as terms
    from audited_hours
),

final as (
    select * from interval_breaks
    union all by name
    select * from charge_breaks
    union all by name
    select * from principal_hour_breaks
)

select * from final
