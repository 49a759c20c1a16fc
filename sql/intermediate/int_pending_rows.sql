-- Every row still PENDING in the lake (the ledger keeps it: its effect happened if it will
-- confirm), one per source row, with its effects and its age at the account's newest fetch.
-- A young row (age up to recon_settings.pending_max_age_hours) may excuse its own amount in a
-- check (is_excused); an older one excuses nothing and is a break itself ('pending_stale').
-- test: unique(account, source_stream, row_key)
with ledger as (
    select * from int_ledger
),

horizon as (
    select * from int_fetch_horizon
),

settings as (
    select * from recon_settings
),

pending as (
    select
        account,
        source_stream,
        regexp_replace(entry_key, ':(principal|interest)$', '') as row_key,
        any_value(tx_id) as tx_id,
        any_value(asset) as asset,
        min(ledger_at) as ledger_at,
        cast(sum(balance_effect) as decimal(38, 18)) as balance_effect,
        cast(sum(principal_effect) as decimal(38, 18)) as principal_effect,
        cast(sum(interest_effect) as decimal(38, 18)) as interest_effect
    from ledger
    where status = 'PENDING'
    group by account, source_stream, row_key
),

final as (
    select
        pending.*,
        horizon.newest_fetched_at,
        date_diff('minute', pending.ledger_at, horizon.newest_fetched_at) // 60 as age_hours,
        pending.ledger_at
        >= horizon.newest_fetched_at - to_hours(settings.pending_max_age_hours) as is_young
    from pending
    left join horizon on pending.account = horizon.account
    cross join settings
)

select * from final
