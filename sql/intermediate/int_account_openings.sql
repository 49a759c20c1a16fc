-- Whether each account's history is proven to reach its opening, when all its balances were
-- zero. Proven only by facts: an export was asked to read from a time before the account's
-- first ledger line (`--since`, src_export_runs), and every stream that moves a balance or a
-- debt and that the exchange serves without a retention limit (transfers, loans, repays,
-- fills, liquidations: int_coverage_needs) was read completely from there on. Nothing before
-- the first line was then found, so the account was empty before it. A stream with a
-- retention limit (interest, capital flow) cannot prove that; its figures are anchored on a
-- snapshot instead where it was cut (int_figure_coverage). Otherwise `reason` says why not.
-- test: unique(account)
with ledger as (
    select * from int_ledger
),

needs as (
    select * from int_coverage_needs
),

runs as (
    select * from src_export_runs
),

snapshots as (
    select * from stg_account_snapshots
),

first_events as (
    select
        account,
        min(ledger_at) as first_event_at
    from ledger
    group by account
),

asked as (
    select
        account,
        min(since_at) as asked_from
    from runs
    group by account
),

typed_history as (
    select
        account,
        max(covered_from) as history_read_from,
        min(covered_to) as history_read_to,
        string_agg(distinct need, ', ' order by need) filter (where covered_from is null)
            as unread
    from needs
    where figure in ('principal', 'balance') and not has_retention
    group by account
),

first_snapshots as (
    select
        account,
        min(snapshot_at) as first_snapshot_at
    from snapshots
    group by account
),

joined as (
    select
        first_events.account,
        first_events.first_event_at,
        first_snapshots.first_snapshot_at,
        asked.asked_from,
        typed_history.history_read_from,
        typed_history.history_read_to,
        typed_history.unread
    from first_events
    left join first_snapshots on first_events.account = first_snapshots.account
    left join asked on first_events.account = asked.account
    left join typed_history on first_events.account = typed_history.account
),

final as (
    select
        *,
        coalesce(
            unread is null
            and history_read_from <= asked_from
            and asked_from < first_event_at,
            false
        ) as reaches_opening,
        case
            when history_read_from is null
                then 'nothing says what the exports read (no coverage ledger)'
            when unread is not null then 'never read: ' || unread
            when asked_from is null
                then 'no export was asked to read from before the first event (--since)'
            when history_read_from > asked_from
                then 'the history was read completely only from ' || iso_utc(history_read_from)
            when asked_from >= first_event_at
                then 'the exports read from ' || iso_utc(asked_from) || ', after the first event'
            else
                'read from ' || iso_utc(asked_from) || ', before the first event at '
                || iso_utc(first_event_at)
        end as reason
    from joined
)

select * from final
