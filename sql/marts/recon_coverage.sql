-- STAND-IN (branch h/statements) for the recon helper's recon_coverage (branch h/recon): drop
-- this file for the real mart at merge. Same name and columns; derived only from what main
-- has (int_position_anchors, int_account_openings, int_snapshot_points).
-- Per account and asset: from when its figures can be verified, how they are anchored and why.
-- verified_from: the account's opening (history from zero) or its first snapshot; null when
-- the account has no snapshot. anchor_snapshot_at: the first snapshot the history ties to.
-- test: unique(account, asset)
-- test: accepted_values(anchor_kind: opening, snapshot, none)
with anchors as (
    select * from int_position_anchors
),

openings as (
    select * from int_account_openings
),

points as (
    select * from int_snapshot_points
),

first_points as (
    select
        account,
        asset,
        min(snapshot_at) as first_snapshot_at
    from points
    group by all
),

final as (
    select
        anchors.account,
        anchors.asset,
        case anchors.anchor_kind
            when 'opening' then openings.first_entry_at
            when 'snapshot' then first_points.first_snapshot_at
        end as verified_from,
        anchors.anchor_kind,
        first_points.first_snapshot_at as anchor_snapshot_at,
        case anchors.anchor_kind
            when 'opening' then 'the history reaches the account''s opening: verified from zero'
            when 'snapshot'
                then
                    'the history does not reach the account''s opening: verified from its first '
                    || 'snapshot'
            else 'no snapshot of the account: nothing to verify against'
        end as reason
    from anchors
    left join openings on anchors.account = openings.account
    left join first_points
        on anchors.account = first_points.account
        and anchors.asset = first_points.asset
)

select * from final
