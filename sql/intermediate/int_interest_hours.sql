-- The principal each hour's charges were computed on, against the ledger's.
-- The charges of one hour (per account, borrowed asset, instant and kind) must add up to the
-- principal outstanding: for PERIODIC charges the running borrowed position at that instant
-- (int_positions, or the anchor's baseline before any ledger line); for ON_BORROW charges the
-- loans made at that instant. ledger_principal is null when the position is not anchored.
with charges as (
    select * from int_interest_charges
),

loans as (
    select * from stg_loans
),

positions as (
    select * from int_positions
),

anchors as (
    select * from int_position_anchors
),

hours as (
    select
        account,
        borrowed_asset,
        accrued_at,
        is_on_borrow,
        sum(principal) as charged_principal,
        count(*) as charges_in_hour
    from charges
    where is_audited
    group by all
),

loans_made as (
    select
        account,
        asset as borrowed_asset,
        loaned_at,
        sum(principal) as loaned_principal
    from loans
    where status <> 'FAILED' and isolated_symbol is null
    group by all
),

periodic_hours as (
    select
        hours.*,
        coalesce(positions.borrowed, anchors.baseline_borrowed) as ledger_principal
    from hours
    asof left join positions
        on hours.account = positions.account
        and hours.borrowed_asset = positions.asset
        and positions.position_at <= hours.accrued_at
    left join anchors
        on hours.account = anchors.account
        and hours.borrowed_asset = anchors.asset
    where not hours.is_on_borrow
),

on_borrow_hours as (
    select
        hours.*,
        coalesce(loans_made.loaned_principal, 0) as ledger_principal
    from hours
    left join loans_made
        on hours.account = loans_made.account
        and hours.borrowed_asset = loans_made.borrowed_asset
        and hours.accrued_at = loans_made.loaned_at
    where hours.is_on_borrow
),

compared_hours as (
    select * from periodic_hours
    union all by name
    select * from on_borrow_hours
),

final as (
    select
        *,
        cast(charged_principal - ledger_principal as decimal(38, 18)) as principal_difference
    from compared_hours
)

select * from final
