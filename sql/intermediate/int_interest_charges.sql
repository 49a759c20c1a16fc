-- Every cross-margin interest charge with the charge recomputed exactly:
-- interest = ceil to 8 decimals of principal x daily rate / 24. In units of 1e-8,
-- ceil(p x r x 1e8 / 24) = (ceil(p x r x 1e8) + 23) // 24: integer arithmetic, no division of
-- decimals (DuckDB would divide in DOUBLE). p and r are cast to 12 decimals first (Binance
-- sends 8) so the product fits DECIMAL(38, 24).
-- PORTFOLIO charges (daily, portfolio margin) follow other rules and are not audited.
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
        interest_type in ('PERIODIC', 'ON_BORROW', 'PERIODIC_CONVERTED', 'ON_BORROW_CONVERTED')
            as is_audited,
        (
            cast(ceil(
                cast(principal as decimal(38, 12)) * cast(interest_rate as decimal(38, 12))
                * 100000000
            ) as hugeint) + 23
        ) // 24 as expected_units
    from interest
    where isolated_symbol is null
),

final as (
    select
        * exclude (expected_units),
        cast(
            cast(expected_units as decimal(30, 0)) * cast(0.00000001 as decimal(8, 8))
            as decimal(38, 18)
        ) as expected_interest
    from charges
)

select * from final
