-- The margin account's own ledger of balance changes (today's API, 90 days back): one row
-- per id, the latest version seen. Cross-margin rows only; each should be explained by one
-- row of the typed history (loans, repays, transfers, trade legs, fees, conversions).
-- grain: time(flowed_at)
-- test: unique(account, flow_key)
-- test: not_null(account, flow_id, asset, flow_type, amount, flowed_at)
with source as (
    select * from src_capital_flow
),

renamed as (
    select
        coalesce(_account, account) as account,
        id as flow_id,
        "tranId" as tran_id,
        asset,
        symbol,
        "type" as flow_type,
        cast(amount as decimal(38, 18)) as amount,
        note,
        timezone('UTC', "timestamp") as flowed_at,
        _api as api,
        _partition as fetch_partition,
        _run_id as run_id,
        timezone('UTC', _fetched_at) as fetched_at
    from source
),

latest as (
    select * from latest_version(renamed, (account, flow_id))
),

final as (
    select
        cast(flow_id as varchar) as flow_key,
        *
    from latest
)

select * from final
