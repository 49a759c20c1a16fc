-- From when each figure (principal, interest, balance) of each asset is verified, and how.
-- covered_from / covered_to: the span in which every stream the figure needs
-- (int_coverage_needs) was read completely; a need never read leaves the figure uncovered.
-- The figure is anchored:
--   'opening'  where the account's history is proven to reach its opening
--              (int_account_openings) and the figure's streams were read from before its
--              first event: from zero;
--   'snapshot' otherwise, at the first snapshot in the covered span (anchor_at): positions
--              before it are back-solved from it over the complete history, back to
--              covered_from;
--   'none'     where nothing anchors it (not read, or no snapshot since covered_from).
-- verified_from / verified_to bound what is verified; `reason` says why it starts there.
-- test: unique(account, asset, figure)
-- test: accepted_values(anchor_kind: opening, snapshot, none)
with needs as (
    select * from int_coverage_needs
),

openings as (
    select * from int_account_openings
),

points as (
    select * from int_snapshot_points
),

instants as (
    select distinct
        account,
        snapshot_at
    from points
),

figures as (
    select
        account,
        asset,
        figure,
        case when bool_and(covered_from is not null) then max(covered_from) end
            as covered_from,
        case when bool_and(covered_to is not null) then min(covered_to) end as covered_to,
        string_agg(need, ', ' order by need) filter (where covered_from is null)
            as unread_needs,
        arg_max(need, (covered_from, need)) as limiting_need,
        arg_max(retention_days, (covered_from, need)) as limiting_retention_days
    from needs
    group by account, asset, figure
),

first_snapshots as (
    select
        figures.*,
        instants.snapshot_at as first_snapshot_at
    from figures
    asof left join instants
        on figures.account = instants.account
        and instants.snapshot_at >= figures.covered_from
),

anchored as (
    select
        first_snapshots.*,
        openings.first_event_at,
        coalesce(openings.reaches_opening, false) as reaches_opening,
        openings.reason as opening_reason,
        case
            when first_snapshots.covered_from is null then 'none'
            when
                openings.reaches_opening
                and first_snapshots.covered_from <= openings.first_event_at
                then 'opening'
            when first_snapshots.first_snapshot_at <= first_snapshots.covered_to
                then 'snapshot'
            else 'none'
        end as anchor_kind
    from first_snapshots
    left join openings on first_snapshots.account = openings.account
),

final as (
    select
        account,
        asset,
        figure,
        anchor_kind,
        case when anchor_kind = 'snapshot' then first_snapshot_at end as anchor_at,
        case when anchor_kind <> 'none' then covered_from end as verified_from,
        case when anchor_kind <> 'none' then covered_to end as verified_to,
        covered_from,
        covered_to,
        first_event_at,
        limiting_need,
        limiting_retention_days,
        unread_needs,
        case
            when covered_from is null then 'never read: ' || unread_needs
            when anchor_kind = 'none'
                then 'no snapshot since ' || iso_utc(covered_from) || ' to anchor it'
            when anchor_kind = 'opening'
                then
                    'from zero at the opening: every stream it needs was read from '
                    || iso_utc(covered_from) || ', before the first event'
            else
                'back-solved from the snapshot at ' || iso_utc(first_snapshot_at)
                || ' over the history read completely from ' || iso_utc(covered_from) || ' ('
                || limiting_need || coalesce(
                    ', which the exchange keeps ' || limiting_retention_days || ' days', ''
                ) || '); '
                || case
                    when reaches_opening then 'the account opened before what the exchange kept'
                    else 'opening not proven: ' || coalesce(opening_reason, 'no ledger lines')
                end
        end as reason
    from anchored
)

select * from final
