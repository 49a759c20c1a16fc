-- Whether an account's history reaches its opening, when all its balances were zero.
-- Rule: the account's earliest ledger line(s) (any stream, FAILED rows excluded) are all
-- transfers in (money must come in before anything else can happen), and they come no later
-- than the account's first snapshot. Then the history before the first snapshot can be
-- reconciled from zero (an 'opening' interval). Otherwise the first snapshot is the start.
with ledger as (
    select * from int_ledger
),

snapshots as (
    select * from stg_account_snapshots
),

first_entries as (
    select
        account,
        min(ledger_at) as first_entry_at
    from ledger
    group by account
),

first_entry_types as (
    select
        ledger.account,
        first_entries.first_entry_at,
        bool_and(ledger.entry_type = 'TRANSFER_IN') as starts_with_transfer_in
    from ledger
    inner join first_entries
        on ledger.account = first_entries.account
        and ledger.ledger_at = first_entries.first_entry_at
    group by all
),

first_snapshots as (
    select
        account,
        min(snapshot_at) as first_snapshot_at
    from snapshots
    group by account
),

final as (
    select
        first_entry_types.account,
        first_entry_types.first_entry_at,
        first_snapshots.first_snapshot_at,
        first_entry_types.starts_with_transfer_in
        and (
            first_snapshots.first_snapshot_at is null
            or first_entry_types.first_entry_at <= first_snapshots.first_snapshot_at
        ) as reaches_opening
    from first_entry_types
    left join first_snapshots on first_entry_types.account = first_snapshots.account
)

select * from final
