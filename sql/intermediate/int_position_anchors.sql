-- Where each account's running positions (balance, borrowed, interest) are pinned: at zero
-- before the first ledger line when the history reaches the opening (int_account_openings),
-- else at the first snapshot point. The baseline is the anchor value minus the ledger's effects
-- up to the anchor, so position(t) = baseline + effects up to t, before or after the anchor.
-- Accounts with neither have anchor_kind 'none' and no baseline.
with points as (
    select * from int_snapshot_points
),

openings as (
    select * from int_account_openings
),

ledger as (
    select * from int_ledger
),

account_assets as (
    select distinct
        account,
        asset
    from points
    union
    select distinct
        account,
        asset
    from ledger
    where asset is not null
),

first_points as (
    select *
    from points
    qualify row_number() over (
        partition by account, asset order by snapshot_at asc, snapshot_source desc
    ) = 1
),

anchors as (
    select
        account_assets.account,
        account_assets.asset,
        case
            when openings.reaches_opening then 'opening'
            when first_points.snapshot_at is not null then 'snapshot'
            else 'none'
        end as anchor_kind,
        case when not coalesce(openings.reaches_opening, false) then first_points.snapshot_at end
            as anchor_at,
        case when openings.reaches_opening then 0 else first_points.balance end
            as anchor_balance,
        case when openings.reaches_opening then 0 else first_points.borrowed end
            as anchor_borrowed,
        case when openings.reaches_opening then 0 else first_points.interest end
            as anchor_interest
    from account_assets
    left join openings on account_assets.account = openings.account
    left join first_points
        on account_assets.account = first_points.account
        and account_assets.asset = first_points.asset
),

effects_to_anchor as (
    select
        anchors.account,
        anchors.asset,
        sum(ledger.balance_effect) as balance_effects,
        sum(ledger.principal_effect) as principal_effects,
        sum(ledger.interest_effect) as interest_effects
    from anchors
    inner join ledger
        on anchors.account = ledger.account
        and anchors.asset = ledger.asset
        and ledger.ledger_at <= anchors.anchor_at
    group by all
),

final as (
    select
        anchors.account,
        anchors.asset,
        anchors.anchor_kind,
        anchors.anchor_at,
        cast(
            anchors.anchor_balance - coalesce(effects_to_anchor.balance_effects, 0)
            as decimal(38, 18)
        ) as baseline_balance,
        cast(
            anchors.anchor_borrowed - coalesce(effects_to_anchor.principal_effects, 0)
            as decimal(38, 18)
        ) as baseline_borrowed,
        cast(
            anchors.anchor_interest - coalesce(effects_to_anchor.interest_effects, 0)
            as decimal(38, 18)
        ) as baseline_interest
    from anchors
    left join effects_to_anchor
        on anchors.account = effects_to_anchor.account
        and anchors.asset = effects_to_anchor.asset
)

select * from final
