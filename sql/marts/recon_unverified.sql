-- STAND-IN (branch h/statements) for the recon helper's recon_unverified (branch h/recon): drop
-- this file for the real mart at merge. Same name and columns; derived only from what main
-- has (recon_coverage's stand-in and the ledger).
-- Spans [span_start, span_end) of an account's asset that no snapshot verifies, with the
-- reason: the history before the first snapshot when it does not reach the account's opening,
-- or all of it when the account has no snapshot (span_end null: open-ended).
with coverage as (
    select * from recon_coverage
),

ledger as (
    select * from int_ledger
),

first_entries as (
    select
        account,
        asset,
        min(ledger_at) as first_entry_at
    from ledger
    where asset is not null
    group by all
),

final as (
    select
        coverage.account,
        coverage.asset,
        first_entries.first_entry_at as span_start,
        coverage.verified_from as span_end,
        case
            when coverage.anchor_kind = 'none' then coverage.reason
            else 'before the first snapshot: the history does not reach the account''s opening'
        end as reason
    from coverage
    inner join first_entries
        on coverage.account = first_entries.account
        and coverage.asset = first_entries.asset
    where
        coverage.anchor_kind = 'none'
        or (
            coverage.anchor_kind = 'snapshot'
            and first_entries.first_entry_at < coverage.verified_from
        )
)

select * from final
