-- Cross-margin transfers (ROLL_IN into margin, ROLL_OUT out of it): one row per txId, the
-- latest version seen (by fetch time, then run id).
-- test: unique(account, transfer_key)
-- test: not_null(account, tx_id, asset, amount, transferred_at)
-- test: accepted_values(transfer_type: ROLL_IN, ROLL_OUT)
-- test: accepted_values(status: LOAN_STATUSES)
with source as (
    select * from src_transfers
),

renamed as (
    select
        coalesce(_account, account) as account,
        "txId" as tx_id,
        asset,
        cast(amount as decimal(38, 18)) as amount,
        "type" as transfer_type,
        status,
        timezone('UTC', "timestamp") as transferred_at,
        "transFrom" as trans_from,
        "transTo" as trans_to,
        "isolatedSymbol" as isolated_symbol,
        _api as api,
        _partition as fetch_partition,
        _run_id as run_id,
        timezone('UTC', _fetched_at) as fetched_at
    from source
),

latest as (
    select * from latest_version(renamed, (account, tx_id))
),

final as (
    select
        cast(tx_id as varchar) as transfer_key,
        *
    from latest
)

select * from final
