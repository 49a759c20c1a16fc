-- Diagnosis: each finding (int_recon_findings) linked to one root cause, so that one missing
-- row shows as one cause, not as hundreds of break rows.
--   1. A finding about one row (is_primary: a capital-flow mismatch, a wrong charge or rate, a
--      loan's first hour, a liquidation's fills, a stale PENDING row) is a cause; findings
--      at the same instant of one account are one cause (the legs of one fill, a loan missing
--      from loans and from its ON_BORROW charge's hour).
--   2. A repay that did not pay interest first follows from such a cause before it (in its
--      region, for its asset), or from hours charged wrong before it (it goes with them), or
--      from an earlier such repay (which left it the wrong interest to pay); else it is a
--      cause itself.
--   3. Any other finding (an interval, an hour) is a consequence when one of those causes lies
--      where it can shift it: in its region, for one of its assets (the latest such cause
--      wins).
--   4. What no row explains: an interval that breaks by d ending at a snapshot and the next
--      by -d is that snapshot; other breaks of one interval are one cause (whatever is
--      missing there, in every asset); hours charged on another principal are the interval
--      they lie in when it breaks too, else one cause per asset and stretch between
--      snapshots.
-- test: unique(break_id)
-- test: not_null(break_id, cause_id)
with findings as (
    select * from int_recon_findings
),

primaries as (
    select
        *,
        'at:' || account || ':' || epoch_ms(happened_at) as cause_id
    from findings
    where is_primary
),

row_causes as (
    select
        cause_id,
        account,
        any_value(happened_at) as happened_at,
        list_sort(list_distinct(flatten(list(assets)))) as assets
    from primaries
    group by cause_id, account
),

-- a repay that did not pay interest first may itself follow from a missing row before it
splits as (
    select * from findings
    where kind = 'repay_split'
),

linked_splits as (
    select
        splits.break_id,
        arg_max(row_causes.cause_id, row_causes.happened_at) as cause_id
    from splits
    inner join row_causes
        on splits.account = row_causes.account
        and list_has_any(row_causes.assets, splits.assets)
        and row_causes.happened_at
        > coalesce(splits.region_start, cast('-infinity' as timestamp))
        and row_causes.happened_at <= splits.region_end
    group by splits.break_id
),

unlinked_splits as (
    select splits.*
    from splits
    anti join linked_splits on splits.break_id = linked_splits.break_id
),

-- hours charged wrong before it shift the interest a repay met: it goes with those hours
hour_symptoms as (
    select * from findings
    where
        kind = 'interest_missing_hour'
        or (kind = 'interest_principal' and interval_kind = 'periodic')
),

splits_after_hours as (
    select unlinked_splits.*
    from unlinked_splits
    semi join hour_symptoms
        on unlinked_splits.account = hour_symptoms.account
        and unlinked_splits.asset = hour_symptoms.asset
        and hour_symptoms.interval_start
        > coalesce(unlinked_splits.region_start, cast('-infinity' as timestamp))
        and hour_symptoms.interval_start < unlinked_splits.happened_at
),

first_splits as (
    select unlinked_splits.*
    from unlinked_splits
    anti join splits_after_hours on unlinked_splits.break_id = splits_after_hours.break_id
),

-- a repay that paid the wrong interest leaves the next one to pay it: one cause, the first
chained_splits as (
    select
        later.break_id,
        arg_min(
            'at:' || earlier.account || ':' || epoch_ms(earlier.happened_at), earlier.happened_at
        ) as cause_id
    from first_splits as later
    inner join first_splits as earlier
        on later.account = earlier.account
        and later.asset = earlier.asset
        and earlier.happened_at < later.happened_at
        and earlier.happened_at > coalesce(later.region_start, cast('-infinity' as timestamp))
    group by later.break_id
),

own_splits as (
    select
        first_splits.break_id,
        'at:' || first_splits.account || ':' || epoch_ms(first_splits.happened_at) as cause_id,
        first_splits.account,
        first_splits.happened_at,
        first_splits.assets
    from first_splits
    anti join chained_splits on first_splits.break_id = chained_splits.break_id
),

primary_causes as (
    select * from row_causes
    union all by name
    select
        cause_id,
        account,
        happened_at,
        assets
    from own_splits
),

consequences as (
    select * from findings
    where not is_primary and kind <> 'repay_split'
),

linked as (
    select
        consequences.break_id,
        arg_max(primary_causes.cause_id, primary_causes.happened_at) as cause_id
    from consequences
    inner join primary_causes
        on consequences.account = primary_causes.account
        and list_has_any(primary_causes.assets, consequences.assets)
        and primary_causes.happened_at
        > coalesce(consequences.region_start, cast('-infinity' as timestamp))
        and primary_causes.happened_at <= consequences.region_end
    group by consequences.break_id
),

unexplained as (
    select consequences.*
    from consequences
    anti join linked on consequences.break_id = linked.break_id
),

unexplained_intervals as (
    select * from unexplained
    where kind in ('principal', 'interest', 'balance')
),

snapshot_pairs as (
    select
        before.break_id as before_id,
        after.break_id as after_id,
        'snapshot:' || before.account || ':' || epoch_ms(before.interval_end) || ':'
        || before.end_source as cause_id
    from unexplained_intervals as before
    inner join unexplained_intervals as after
        on before.account = after.account
        and before.asset = after.asset
        and before.kind = after.kind
        and before.interval_end = after.interval_start
        and before.end_source = after.start_source
        and before.difference = -after.difference
),

snapshot_links as (
    select
        before_id as break_id,
        cause_id
    from snapshot_pairs
    union
    select
        after_id as break_id,
        cause_id
    from snapshot_pairs
),

interval_links as (
    select
        unexplained_intervals.break_id,
        'interval:' || unexplained_intervals.account || ':'
        || coalesce(cast(epoch_ms(unexplained_intervals.interval_start) as varchar), 'opening')
        || ':' || epoch_ms(unexplained_intervals.interval_end) as cause_id
    from unexplained_intervals
    anti join snapshot_links on unexplained_intervals.break_id = snapshot_links.break_id
),

interval_causes as (
    select distinct
        unexplained_intervals.account,
        unexplained_intervals.asset,
        unexplained_intervals.interval_start,
        unexplained_intervals.interval_end,
        interval_links.cause_id
    from unexplained_intervals
    inner join interval_links on unexplained_intervals.break_id = interval_links.break_id
),

unexplained_hours as (
    select * from unexplained
    where kind in ('interest_principal', 'interest_missing_hour')
    union all by name
    select * from splits_after_hours
),

hour_links as (
    select
        unexplained_hours.break_id,
        coalesce(
            any_value(interval_causes.cause_id),
            'hours:' || unexplained_hours.account || ':' || unexplained_hours.asset || ':'
            || coalesce(cast(epoch_ms(unexplained_hours.segment_start) as varchar), 'start')
            || ':' || coalesce(cast(epoch_ms(unexplained_hours.segment_end) as varchar), 'end')
        ) as cause_id
    from unexplained_hours
    left join interval_causes
        on unexplained_hours.account = interval_causes.account
        and unexplained_hours.asset = interval_causes.asset
        and unexplained_hours.segment_start is not distinct from interval_causes.interval_start
        and unexplained_hours.segment_end = interval_causes.interval_end
    group by
        unexplained_hours.break_id, unexplained_hours.account, unexplained_hours.asset,
        unexplained_hours.segment_start, unexplained_hours.segment_end
),

final as (
    select
        break_id,
        cause_id
    from primaries
    union all
    select * from linked
    union all
    select * from snapshot_links
    union all
    select * from interval_links
    union all
    select * from hour_links
    union all
    select * from linked_splits
    union all
    select * from chained_splits
    union all
    select
        break_id,
        cause_id
    from own_splits
)

-- with its account: every table of the warehouse holds one account's rows per row, which is
-- what lets a build rebuild one account alone (sql/increments.py)
select
    findings.account,
    final.break_id,
    final.cause_id
from final
inner join findings on final.break_id = findings.break_id
