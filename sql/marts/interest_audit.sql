-- Every interest charge audited (int_interest_charges, int_interest_hours):
--   the charge: interest = ceil8(principal x rate / 24) (a charge paid in BNB is checked
--   against the capital flow's deduction instead: int_capital_flow_matches);
--   the rate: the daily rate in force for its asset at that hour in the exported rate history
--   (stg_interest_rates; checked where the rate history was read from that hour on);
--   the principal: its hour's charges add up to the principal outstanding (PERIODIC) or to the
--   loans then made (ON_BORROW).
-- audit_status (the first that fails): 'charge_mismatch', 'rate_mismatch',
-- 'principal_mismatch', 'principal_unknown' (the hour's principal is not verified), 'ok';
-- 'not_audited' (PORTFOLIO charges). Hours with principal but no charge at all are in
-- int_interest_hours (and recon_breaks), not here: this mart has one row per charge.
-- test: unique(account, interest_key)
-- test: accepted_values(audit_status: AUDIT_STATUSES)
with charges as (
    select * from int_interest_charges
),

hours as (
    select * from int_interest_hours
),

rates as (
    select * from stg_interest_rates
),

coverage as (
    select * from int_stream_coverage
),

with_rates as (
    select
        charges.*,
        rates.daily_rate as published_rate,
        rates.rate_from as published_from,
        -- rates change on the hour: the hour's published rate must have been read
        coalesce(
            date_trunc('hour', charges.accrued_at) >= coverage.covered_from
            and charges.accrued_at < coverage.covered_to,
            false
        ) as is_rate_checkable
    from charges
    asof left join rates
        on charges.account = rates.account
        and charges.borrowed_asset = rates.asset
        and rates.rate_from <= charges.accrued_at
    left join coverage
        on charges.account = coverage.account
        and coverage.stream = 'interest_rates'
        and charges.borrowed_asset = coverage.partition_key
),

audited as (
    select
        with_rates.interest_key,
        with_rates.account,
        with_rates.tx_id,
        with_rates.asset,
        with_rates.borrowed_asset,
        with_rates.accrued_at,
        with_rates.interest_type,
        with_rates.is_converted,
        with_rates.principal,
        with_rates.interest_rate,
        with_rates.interest,
        with_rates.expected_interest,
        with_rates.charge_difference,
        with_rates.published_rate,
        with_rates.is_rate_checkable,
        case
            when with_rates.is_rate_checkable
                then cast(
                    with_rates.interest_rate - coalesce(with_rates.published_rate, 0)
                    as decimal(38, 18)
                )
        end as rate_difference,
        hours.charges_in_hour,
        hours.charged_principal,
        hours.ledger_principal,
        hours.principal_difference,
        hours.is_checkable as is_principal_checkable,
        with_rates.is_audited
    from with_rates
    left join hours
        on with_rates.account = hours.account
        and with_rates.borrowed_asset = hours.borrowed_asset
        and with_rates.accrued_at = hours.accrued_at
        and hours.charge_kind
        = case when with_rates.is_on_borrow then 'ON_BORROW' else 'PERIODIC' end
),

final as (
    select
        *,
        case
            when not is_audited then 'not_audited'
            when expected_interest is null or charge_difference <> 0 then 'charge_mismatch'
            when rate_difference <> 0 then 'rate_mismatch'
            when not coalesce(is_principal_checkable, false) then 'principal_unknown'
            when principal_difference <> 0 then 'principal_mismatch'
            else 'ok'
        end as audit_status
    from audited
)

select * from final
