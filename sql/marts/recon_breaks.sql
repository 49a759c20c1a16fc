-- Every reconciliation row that does not match, in one shape: principal, interest and balance
-- intervals, plus the interest audit's mismatches (a charge not equal to its recomputation:
-- 'interest_charge'; an hour's charged principal not equal to the ledger's: 'interest_principal').
-- status is 'break' or 'provisional' (see recon_status); `terms` lists the non-zero terms of the
-- expected side, so a person sees where to look.
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

principal_breaks as (
    select
        account,
        'principal' as kind,
        asset,
        interval_kind,
        interval_start,
        interval_end,
        start_source,
        end_source,
        borrowed_start as value_start,
        borrowed_end as value_end,
        expected_change as expected,
        actual_change as actual,
        difference,
        pending_rows,
        status,
        concat_ws(
            '; ',
            'loans_principal=' || plain_decimal(loans_principal),
            'repaid_principal=' || plain_decimal(repaid_principal)
        ) as terms
    from principal
    where status <> 'matched'
),

interest_breaks as (
    select
        account,
        'interest' as kind,
        asset,
        interval_kind,
        interval_start,
        interval_end,
        start_source,
        end_source,
        interest_start as value_start,
        interest_end as value_end,
        expected_change as expected,
        actual_change as actual,
        difference,
        pending_rows,
        status,
        concat_ws(
            '; ',
            'interest_charged=' || plain_decimal(interest_charged),
            'interest_repaid=' || plain_decimal(interest_repaid)
        ) as terms
    from interest
    where status <> 'matched'
),

balance_breaks as (
    select
        account,
        'balance' as kind,
        asset,
        interval_kind,
        interval_start,
        interval_end,
        start_source,
        end_source,
        balance_start as value_start,
        balance_end as value_end,
        expected_change as expected,
        actual_change as actual,
        difference,
        pending_rows,
        status,
        concat_ws(
            '; ',
            case when transfers_in <> 0 then 'transfers_in=' || plain_decimal(transfers_in) end,
            case when transfers_out <> 0 then 'transfers_out=' || plain_decimal(transfers_out) end,
            case when borrowed <> 0 then 'borrowed=' || plain_decimal(borrowed) end,
            case
                when repaid_principal <> 0
                    then 'repaid_principal=' || plain_decimal(repaid_principal)
            end,
            case
                when repaid_interest <> 0
                    then 'repaid_interest=' || plain_decimal(repaid_interest)
            end,
            case when trades <> 0 then 'trades=' || plain_decimal(trades) end,
            case when commissions <> 0 then 'commissions=' || plain_decimal(commissions) end,
            case when liquidations <> 0 then 'liquidations=' || plain_decimal(liquidations) end,
            case
                when interest_converted <> 0
                    then 'interest_converted=' || plain_decimal(interest_converted)
            end
        ) as terms
    from balances
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
            'principal=' || plain_decimal(principal),
            'interest_rate=' || plain_decimal(interest_rate)
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
    select * from principal_breaks
    union all by name
    select * from interest_breaks
    union all by name
    select * from balance_breaks
    union all by name
    select * from charge_breaks
    union all by name
    select * from principal_hour_breaks
)

select * from final
