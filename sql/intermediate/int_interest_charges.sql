-- Every cross-margin interest charge with the charge recomputed exactly:
-- ceil8(principal x daily rate / 24) in integers of 1e-8 (hourly_interest_units), so no
-- principal Binance can hold overflows. A *_CONVERTED charge was paid at once in BNB: its
-- principal and rate are the borrowed asset's (raw_asset) and its `interest` is the BNB paid,
-- so the recomputed charge is in the borrowed asset and is not compared with it (the BNB paid
-- is checked against the capital flow's deduction, int_capital_flow_matches).
-- PORTFOLIO charges (daily, portfolio margin) follow other rules and are not audited.
-- grain: time(accrued_at)
-- test: unique(account, interest_key)
with interest as (
    select * from stg_interest
),

charges as (
    select
        interest_key,
        account,
        tx_id,
        asset,
        coalesce(raw_asset, asset) as borrowed_asset,
        accrued_at,
        interest_type,
        principal,
        interest_rate,
        interest,
        interest_type in ('ON_BORROW', 'ON_BORROW_CONVERTED') as is_on_borrow,
        ends_with(interest_type, '_CONVERTED') as is_converted,
        interest_type in ('PERIODIC', 'ON_BORROW', 'PERIODIC_CONVERTED', 'ON_BORROW_CONVERTED')
            as is_audited,
        from_units(hourly_interest_units(principal, interest_rate)) as expected_interest
    from interest
    where isolated_symbol is null
),

final as (
    select
        *,
        case when is_converted then expected_interest else interest end as borrowed_asset_interest,
        case when not is_converted then cast(interest - expected_interest as decimal(38, 18)) end
            as charge_difference
    from charges
)

select * from final
