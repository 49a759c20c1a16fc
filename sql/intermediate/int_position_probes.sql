-- Positions just before given instants, for the checks that need the state a row met:
--   'hour':  every hour where the borrowed principal is verified and the interest history was
--            read (the principal its PERIODIC charges must be computed on);
--   'repay': every cross-margin repay (the unpaid interest it must pay first).
-- "Before t" is every line before t and none at t: the exchange charges an hour before the
-- loans and repays made at that very instant (docs/simulator.md). Each position is
-- re-anchored at the latest snapshot before t inside the figure's verified span, so a missing
-- row shifts positions only up to the next snapshot; before that, from zero where the figure
-- is anchored at the opening, else back-solved from the next snapshot:
-- value(a) + running(< t) - running(a) (int_anchor_points, int_ledger_instants).
-- segment_start / segment_end: the snapshots around t, where a row shifting it must lie.
-- test: unique(account, asset, probe_kind, probe_at, probe_key)
with figures as (
    select * from int_figure_coverage
),

anchor_points as (
    select * from int_anchor_points
),

instants as (
    select * from int_ledger_instants
),

repays as (
    select * from stg_repays
),

principal_figures as (
    select * from figures
    where figure = 'principal'
),

interest_figures as (
    select * from figures
    where figure = 'interest'
),

borrowing_assets as (
    select distinct
        account,
        asset
    from instants
    where principal_change <> 0
    union
    select distinct
        account,
        asset
    from anchor_points
    where borrowed <> 0
),

hour_spans as (
    select
        principal_figures.account,
        principal_figures.asset,
        -- the first whole hour at or after the span's start
        date_trunc(
            'hour', greatest(principal_figures.verified_from, interest_figures.covered_from)
            - interval 1 microsecond
        ) + interval 1 hour as span_from,
        least(principal_figures.verified_to, interest_figures.covered_to) as span_to
    from principal_figures
    inner join interest_figures
        on principal_figures.account = interest_figures.account
        and principal_figures.asset = interest_figures.asset
    semi join borrowing_assets
        on principal_figures.account = borrowing_assets.account
        and principal_figures.asset = borrowing_assets.asset
    where principal_figures.anchor_kind <> 'none' and interest_figures.covered_from is not null
),

hour_probes as (
    select
        account,
        asset,
        'hour' as probe_kind,
        unnest(range(span_from, span_to, interval 1 hour)) as probe_at,
        '' as probe_key
    from hour_spans
    where span_from < span_to
),

repay_probes as (
    select
        account,
        asset,
        'repay' as probe_kind,
        repaid_at as probe_at,
        repay_key as probe_key
    from repays
    where status <> 'FAILED' and isolated_symbol is null
),

probes as (
    select * from hour_probes
    union all
    select * from repay_probes
),

with_figures as (
    select
        probes.*,
        principal_figures.anchor_kind as principal_anchor_kind,
        principal_figures.covered_from as principal_covered_from,
        interest_figures.anchor_kind as interest_anchor_kind,
        interest_figures.covered_from as interest_covered_from
    from probes
    left join principal_figures
        on probes.account = principal_figures.account
        and probes.asset = principal_figures.asset
    left join interest_figures
        on probes.account = interest_figures.account
        and probes.asset = interest_figures.asset
),

with_previous as (
    select
        with_figures.*,
        anchor_points.anchor_at as previous_at,
        anchor_points.borrowed as previous_borrowed,
        anchor_points.interest as previous_interest,
        anchor_points.cumulative_principal as previous_running_principal,
        anchor_points.cumulative_interest as previous_running_interest
    from with_figures
    asof left join anchor_points
        on with_figures.account = anchor_points.account
        and with_figures.asset = anchor_points.asset
        and anchor_points.anchor_at < with_figures.probe_at
),

with_next as (
    select
        with_previous.*,
        anchor_points.anchor_at as next_at,
        anchor_points.borrowed as next_borrowed,
        anchor_points.interest as next_interest,
        anchor_points.cumulative_principal as next_running_principal,
        anchor_points.cumulative_interest as next_running_interest
    from with_previous
    asof left join anchor_points
        on with_previous.account = anchor_points.account
        and with_previous.asset = anchor_points.asset
        and anchor_points.anchor_at >= with_previous.probe_at
),

with_running as (
    select
        with_next.*,
        coalesce(instants.cumulative_principal, 0) as running_principal,
        coalesce(instants.cumulative_interest, 0) as running_interest
    from with_next
    asof left join instants
        on with_next.account = instants.account
        and with_next.asset = instants.asset
        and instants.instant_at < with_next.probe_at
),

anchored as (
    select
        *,
        -- the previous snapshot anchors a figure when it lies in the span the figure is
        -- verified in (or the figure starts from zero at the opening)
        coalesce(
            principal_anchor_kind = 'opening' or previous_at >= principal_covered_from, false
        ) as principal_from_previous,
        coalesce(
            interest_anchor_kind = 'opening' or previous_at >= interest_covered_from, false
        ) as interest_from_previous
    from with_running
),

final as (
    select
        account,
        asset,
        probe_kind,
        probe_at,
        probe_key,
        case when principal_from_previous then previous_at end as principal_segment_start,
        next_at as segment_end,
        case
            when principal_anchor_kind = 'none' then null
            when principal_from_previous and previous_at is not null
                then previous_borrowed + running_principal - previous_running_principal
            when principal_anchor_kind = 'opening' then running_principal
            else next_borrowed + running_principal - next_running_principal
        end as borrowed_before,
        case
            when interest_anchor_kind = 'none' then null
            when interest_from_previous and previous_at is not null
                then previous_interest + running_interest - previous_running_interest
            when interest_anchor_kind = 'opening' then running_interest
            else next_interest + running_interest - next_running_interest
        end as interest_before,
        case when interest_from_previous then previous_at end as interest_segment_start
    from anchored
)

select * from final
