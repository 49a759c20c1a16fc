-- Repayments, both API generations in one shape: one row per txId, the latest version seen
-- (PENDING then CONFIRMED keeps CONFIRMED). amount = interest + principal (interest first).
-- test: unique(account, repay_key)
-- test: not_null(account, tx_id, asset, amount, interest, principal)
-- test: accepted_values(status: LOAN_STATUSES)
with source as (
    select * from src_repays
),

renamed as (
    select
        coalesce(_account, account) as account,
        "txId" as tx_id,
        asset,
        cast(amount as decimal(38, 18)) as amount,
        cast(interest as decimal(38, 18)) as interest,
        cast(principal as decimal(38, 18)) as principal,
        "type" as repay_type,
        "rawAsset" as raw_asset,
        status,
        timezone('UTC', "timestamp") as repaid_at,
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
        cast(tx_id as varchar) as repay_key,
        *
    from latest
)

select * from final
