-- The spans of each asset's history that are not verified, with the reason, per account,
-- asset and figure (int_figure_coverage): never silently dropped. A span is
--   [first seen, verified_from)  history before the span its streams were read completely in
--                                 (e.g. the interest history, kept 90 days by the exchange);
--   (verified_to, last line]      ledger lines after what was read;
--   [first seen, last seen]      a figure nothing anchors (not read, or no snapshot to
--                                 anchor it).
-- Inside the covered history (between verified_from and verified_to) there is none.
-- test: not_null(account, asset, figure, span_start, span_end, reason)
-- test: accepted_values(figure: principal, interest, balance)
with figures as (
    select * from int_figure_coverage
),

assets as (
    select * from int_account_assets
),

located as (
    select
        figures.*,
        assets.first_seen_at,
        assets.last_seen_at,
        assets.last_line_at
    from figures
    inner join assets
        on figures.account = assets.account
        and figures.asset = assets.asset
),

unanchored as (
    select
        account,
        asset,
        figure,
        first_seen_at as span_start,
        last_seen_at as span_end,
        reason
    from located
    where anchor_kind = 'none'
),

before_verified as (
    select
        account,
        asset,
        figure,
        first_seen_at as span_start,
        verified_from as span_end,
        reason
    from located
    where anchor_kind <> 'none' and first_seen_at < verified_from
),

after_verified as (
    select
        account,
        asset,
        figure,
        verified_to as span_start,
        last_line_at as span_end,
        'read only up to ' || iso_utc(verified_to) as reason
    from located
    where anchor_kind <> 'none' and last_line_at > verified_to
),

final as (
    select * from unanchored
    union all
    select * from before_verified
    union all
    select * from after_verified
)

select * from final
