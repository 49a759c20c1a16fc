-- From when each asset's figures are verified, per account and asset, and how (from
-- int_figure_coverage, one row per figure, folded here into one row per asset):
--   verified_from       every figure is verified from then on (null: one is not at all);
--   verified_to         ... up to then (where what they need was read up to);
--   anchor_kind         'opening' (every figure from zero at the account's opening),
--                       'snapshot' (one or more back-solved from a snapshot), 'none' (one
--                       figure has nothing to anchor it);
--   anchor_snapshot_at  the latest snapshot a figure is anchored at;
--   reason              why verification starts there (the figure that starts last);
-- and per figure: <figure>_verified_from, <figure>_anchor_kind, <figure>_anchor_at.
-- Spans that are not verified are in recon_unverified.
-- test: unique(account, asset)
-- test: accepted_values(anchor_kind: opening, snapshot, none)
with figures as (
    select * from int_figure_coverage
),

assets as (
    select * from int_account_assets
),

folded as (
    select
        account,
        asset,
        case when bool_and(verified_from is not null) then max(verified_from) end
            as verified_from,
        case when bool_and(verified_to is not null) then min(verified_to) end as verified_to,
        case
            when bool_or(anchor_kind = 'none') then 'none'
            when bool_and(anchor_kind = 'opening') then 'opening'
            else 'snapshot'
        end as anchor_kind,
        max(anchor_at) as anchor_snapshot_at,
        arg_max(figure || ': ' || reason, (verified_from, figure, reason)) as limiting_reason,
        bool_or(anchor_kind = 'none') as has_unanchored,
        any_value(verified_from) filter (where figure = 'principal') as principal_verified_from,
        any_value(anchor_kind) filter (where figure = 'principal') as principal_anchor_kind,
        any_value(anchor_at) filter (where figure = 'principal') as principal_anchor_at,
        any_value(verified_from) filter (where figure = 'interest') as interest_verified_from,
        any_value(anchor_kind) filter (where figure = 'interest') as interest_anchor_kind,
        any_value(anchor_at) filter (where figure = 'interest') as interest_anchor_at,
        any_value(verified_from) filter (where figure = 'balance') as balance_verified_from,
        any_value(anchor_kind) filter (where figure = 'balance') as balance_anchor_kind,
        any_value(anchor_at) filter (where figure = 'balance') as balance_anchor_at,
        string_agg(figure || ': ' || reason, '; ' order by figure) filter (
            where anchor_kind = 'none'
        ) as unanchored_reasons
    from figures
    group by account, asset
),

final as (
    select
        folded.account,
        folded.asset,
        folded.verified_from,
        folded.anchor_kind,
        folded.anchor_snapshot_at,
        case
            when folded.has_unanchored then folded.unanchored_reasons
            else folded.limiting_reason
        end as reason,
        folded.verified_to,
        assets.first_seen_at,
        assets.last_seen_at,
        folded.principal_verified_from,
        folded.principal_anchor_kind,
        folded.principal_anchor_at,
        folded.interest_verified_from,
        folded.interest_anchor_kind,
        folded.interest_anchor_at,
        folded.balance_verified_from,
        folded.balance_anchor_kind,
        folded.balance_anchor_at
    from folded
    left join assets
        on folded.account = assets.account
        and folded.asset = assets.asset
)

select * from final
