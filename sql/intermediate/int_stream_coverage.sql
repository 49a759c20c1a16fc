-- What the exports read completely, per account, stream and partition (the coverage ledger,
-- src_coverage: one row per window [start, end) read completely). Windows that overlap or
-- touch make one stretch; the stretch that reaches the newest read is the covered history
-- (covered_from, covered_to); an older stretch before a hole is not continuous with it.
-- test: unique(account, stream, partition_key)
with coverage as (
    select * from src_coverage
),

ordered as (
    select
        *,
        max(end_at) over (
            partition by account, stream, partition_key
            order by start_at, end_at
            rows between unbounded preceding and 1 preceding
        ) as reached_before
    from coverage
),

numbered as (
    select
        *,
        sum(case when reached_before is null or start_at > reached_before then 1 else 0 end)
            over (
                partition by account, stream, partition_key
                order by start_at, end_at
                rows between unbounded preceding and current row
            ) as stretch
    from ordered
),

stretches as (
    select
        account,
        stream,
        partition_key,
        stretch,
        min(start_at) as stretch_from,
        max(end_at) as stretch_to
    from numbered
    group by all
),

final as (
    select
        account,
        stream,
        partition_key,
        arg_max(stretch_from, stretch_to) as covered_from,
        max(stretch_to) as covered_to,
        min(stretch_from) as first_read_from,
        count(*) as stretches
    from stretches
    group by account, stream, partition_key
)

select * from final
