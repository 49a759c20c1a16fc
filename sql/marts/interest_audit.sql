-- Every hourly interest charge recomputed (int_interest_charges) and the principal its hour
-- was charged on checked against the ledger (int_interest_hours).
-- audit_status: 'ok', 'charge_mismatch' (interest <> ceil8(principal x rate / 24)),
-- 'principal_mismatch' (the hour's charged principal <> the ledger's), 'principal_unknown'
-- (no anchored position to compare with), 'not_audited' (PORTFOLIO charges).
-- test: unique(account, interest_key)
-- test: accepted_values(audit_status: AUDIT_STATUSES)
with charges as (
    select * from int_interest_charges
),

hours as (
    select * from int_interest_hours
),

horizon as (
    select * from int_fetch_horizon
),

settings as (
    select * from recon_settings
),

audited as (
    select
        charges.interest_key,
        charges.account,
        charges.asset,
        charges.borrowed_asset,
        charges.accrued_at,
        charges.interest_type,
        charges.principal,
        charges.interest_rate,
        charges.interest,
        charges.expected_interest,
        cast(charges.interest - charges.expected_interest as decimal(38, 18))
            as charge_difference,
        hours.charges_in_hour,
        hours.charged_principal,
        hours.ledger_principal,
        hours.principal_difference,
        charges.is_audited,
        coalesce(
            charges.accrued_at
            > horizon.newest_fetched_at - to_hours(settings.late_window_hours),
            false
        ) as is_within_late_window
    from charges
    left join hours
        on charges.account = hours.account
        and charges.borrowed_asset = hours.borrowed_asset
        and charges.accrued_at = hours.accrued_at
        and charges.is_on_borrow = hours.is_on_borrow
    left join horizon on charges.account = horizon.account
    cross join settings
),

final as (
    select
        *,
        case
            when not is_audited then 'not_audited'
            when charge_difference <> 0 then 'charge_mismatch'
            when ledger_principal is null then 'principal_unknown'
            when principal_difference <> 0 then 'principal_mismatch'
            else 'ok'
        end as audit_status
    from audited
)

select * from final
