-- materialized: view
-- Breaks and provisional differences per account and month (of the interval's end).
with breaks as (
    select * from recon_breaks
),

final as (
    select
        account,
        strftime(interval_end, '%Y-%m') as month,
        kind,
        asset,
        status,
        interval_kind,
        interval_start,
        interval_end,
        start_source,
        end_source,
        value_start,
        value_end,
        expected,
        actual,
        difference,
        pending_rows,
        terms
    from breaks
)

select * from final
