-- materialized: view
-- The capital-flow cross-check (int_capital_flow_pairs) with each row's status: recon_status
-- over the row (unverified outside the span both sides were read in, int_capital_flow_windows;
-- a young PENDING typed row without its flow row is provisional: it may fail). A status ages
-- with the newest fetch, so it is worked out when read, not kept. No data test reads this
-- view (one would work out 2.4 M statuses of a large account in every build): the rows that do
-- not match are tested where they land, in int_recon_findings.
with pairs as (
    -- what a rebuild needs only
    select * exclude (pair_tran_id, first_at, last_at) from int_capital_flow_pairs
),

windows as (
    select * from int_capital_flow_windows
),

pending as (
    select * from int_pending_rows
),

horizon as (
    select * from int_fetch_horizon
),

settings as (
    select * from recon_settings
),

final as (
    select
        pairs.*,
        coalesce(
            pairs.row_at >= windows.checked_from and pairs.row_at < windows.checked_to, false
        ) as is_checkable,
        recon_status(
            case when pairs.match_status = 'matched' then 0 else 1 end,
            is_checkable,
            case
                when pairs.match_status = 'missing_flow' and pending.is_young then [1]
            end,
            pairs.row_at > horizon.newest_fetched_at - to_hours(settings.late_window_hours)
        ) as status
    from pairs
    left join windows on pairs.account = windows.account
    left join pending
        on pairs.account = pending.account
        and pairs.row_key = pending.row_key
    left join horizon on pairs.account = horizon.account
    cross join settings
)

select * from final
