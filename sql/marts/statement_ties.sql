-- How the figures of an account's asset are tied to the snapshots, as spans of time: a figure
-- at instant t (a position, or a movement made at t) takes the tie of the span holding t,
-- span_start < t <= span_end (a null end is open). Where spans overlap, the lowest precedence
-- wins:
--   0  a span recon_unverified names: `unverified`, with its reason;
--   1  a reconciliation interval (t1, t2] between snapshots (or from the opening): `tied` to
--      the snapshot at t2 when principal, interest and balance matched there, else `break` or
--      `provisional` with what differed (recon_breaks);
--   2  after the last snapshot: still tied to it until the asset's next ledger line, then
--      `unverified`; before verification starts: `unverified` with recon_coverage's reason.
-- severity orders the statuses (tied 0, unverified 1, provisional 2, break 3): a figure made
-- of a stretch of time (a month's movements) takes the worst of the spans it overlaps.
with intervals as (
    select * from int_snapshot_intervals
),

breaks as (
    select * from recon_breaks
),

coverage as (
    select * from recon_coverage
),

unverified as (
    select * from recon_unverified
),

ledger as (
    select * from int_ledger
),

instant_breaks as (
    select
        account,
        asset,
        interval_end,
        max(case status when 'break' then 3 when 'provisional' then 2 else 0 end) as severity,
        string_agg(
            kind || ' ' || status || ': the ledger says ' || plain_decimal(expected)
            || ', the snapshots ' || plain_decimal(actual) || ' (' || terms || ')',
            '; ' order by kind
        ) as reason
    from breaks
    where kind in ('principal', 'interest', 'balance')
    group by all
),

instants as (
    select
        account,
        asset,
        interval_end,
        max(interval_start) filter (where interval_start < interval_end) as previous_at,
        bool_or(interval_kind = 'opening') as is_opening,
        max(end_source) as end_source
    from intervals
    group by all
),

interval_spans as (
    select
        instants.account,
        instants.asset,
        case
            when instants.previous_at is not null then instants.previous_at
            when not instants.is_opening then instants.interval_end - interval 1 microsecond
        end as span_start,
        instants.interval_end as span_end,
        1 as precedence,
        coalesce(instant_breaks.severity, 0) as severity,
        instants.interval_end as tied_to,
        instants.end_source as tied_source,
        coalesce(
            instant_breaks.reason,
            case
                when instants.previous_at is not null
                    then 'matched since the snapshot at ' || iso_utc(instants.previous_at)
                when instants.is_opening then 'matched from the account''s opening'
                else 'matched at this snapshot'
            end
        ) as tie_reason
    from instants
    left join instant_breaks
        on instants.account = instant_breaks.account
        and instants.asset = instant_breaks.asset
        and instants.interval_end = instant_breaks.interval_end
),

-- the first snapshot of an account whose history does not reach its opening pins the
-- positions there: no interval ends at it
anchor_spans as (
    select
        account,
        asset,
        anchor_snapshot_at - interval 1 microsecond as span_start,
        anchor_snapshot_at as span_end,
        1 as precedence,
        0 as severity,
        anchor_snapshot_at as tied_to,
        cast(null as varchar) as tied_source,
        'the positions are pinned at this snapshot, the first' as tie_reason
    from coverage
    where anchor_kind = 'snapshot'
),

last_instants as (
    select
        interval_spans.account,
        interval_spans.asset,
        interval_spans.span_end as last_at,
        interval_spans.severity,
        interval_spans.tied_source,
        interval_spans.tie_reason
    from interval_spans
    qualify row_number() over (
        partition by interval_spans.account, interval_spans.asset
        order by interval_spans.span_end desc
    ) = 1
),

later_lines as (
    select
        last_instants.account,
        last_instants.asset,
        min(ledger.ledger_at) as next_line_at
    from last_instants
    inner join ledger
        on last_instants.account = ledger.account
        and last_instants.asset = ledger.asset
        and ledger.ledger_at > last_instants.last_at
    group by all
),

trailing_spans as (
    select
        last_instants.account,
        last_instants.asset,
        last_instants.last_at as span_start,
        later_lines.next_line_at - interval 1 microsecond as span_end,
        2 as precedence,
        last_instants.severity,
        last_instants.last_at as tied_to,
        last_instants.tied_source,
        case
            when last_instants.severity = 0 then 'no movement since the last snapshot'
            else
                'no movement since the last snapshot, which did not reconcile: '
                || last_instants.tie_reason
        end as tie_reason
    from last_instants
    left join later_lines
        on last_instants.account = later_lines.account
        and last_instants.asset = later_lines.asset
    union all
    select
        account,
        asset,
        next_line_at - interval 1 microsecond as span_start,
        cast(null as timestamp) as span_end,
        2 as precedence,
        1 as severity,
        cast(null as timestamp) as tied_to,
        cast(null as varchar) as tied_source,
        'movements after the last snapshot are not yet checked against one' as tie_reason
    from later_lines
),

coverage_spans as (
    select
        account,
        asset,
        cast(null as timestamp) as span_start,
        verified_from - interval 1 microsecond as span_end,
        2 as precedence,
        1 as severity,
        cast(null as timestamp) as tied_to,
        cast(null as varchar) as tied_source,
        reason as tie_reason
    from coverage
    -- from the opening on, the opening interval ties what comes before the first snapshot
    where anchor_kind <> 'opening' or anchor_snapshot_at is null
),

unverified_spans as (
    select
        account,
        asset,
        span_start - interval 1 microsecond as span_start,
        span_end - interval 1 microsecond as span_end,
        0 as precedence,
        1 as severity,
        cast(null as timestamp) as tied_to,
        cast(null as varchar) as tied_source,
        reason as tie_reason
    from unverified
),

spans as (
    select * from interval_spans
    union all by name
    select * from anchor_spans
    union all by name
    select * from trailing_spans
    union all by name
    select * from coverage_spans
    union all by name
    select * from unverified_spans
),

final as (
    select
        account,
        asset,
        span_start,
        span_end,
        precedence,
        severity,
        case severity
            when 0 then 'tied' when 1 then 'unverified' when 2 then 'provisional' else 'break'
        end as tie_status,
        tied_to,
        tied_source,
        tie_reason
    from spans
)

select * from final
