-- The ledger summed per account, asset, entry type, status and hour: what the reconciliation
-- intervals add up (int_interval_terms), so that they meet some 40 k hours a year, not every
-- line. first_at and last_at are the hour's first and last line: an hour with a snapshot
-- instant inside it is assigned line by line instead.
-- grain: time(ledger_hour)
-- test: unique(account, asset, entry_type, status, ledger_hour)
with ledger as (
    select * from int_ledger
),

final as (
    select
        account,
        asset,
        entry_type,
        status,
        date_trunc('hour', ledger_at) as ledger_hour,
        min(ledger_at) as first_at,
        max(ledger_at) as last_at,
        sum(balance_effect) as balance_effects,
        sum(principal_effect) as principal_effects,
        sum(interest_effect) as interest_effects,
        count(*) filter (where principal_effect <> 0) as principal_rows,
        count(*) filter (where interest_effect <> 0) as interest_rows,
        count(*) filter (where balance_effect <> 0) as balance_rows,
        count(*) as ledger_rows
    from ledger
    group by all
)

select * from final
