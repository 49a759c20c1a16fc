-- Interest charges: one row per real charge.
-- Two genuinely identical rows (same asset, hour, principal, rate, amount and type: e.g. two
-- loans of the same size) are both real, so identical content is not a key. The key is the
-- txId when the API sent one (current API), otherwise the content hash plus the ordinal among
-- identical rows within one fetch: see latest_by_tx_id_or_content in macros.sql.
-- grain: time(accrued_at)
-- test: unique(account, interest_key)
-- test: not_null(account, asset, principal, interest, accrued_at)
-- test: accepted_values(interest_type: INTEREST_TYPES)
with source as (
    select * from src_interest
),

renamed as (
    select
        coalesce(_account, account) as account,
        "txId" as tx_id,
        asset,
        "rawAsset" as raw_asset,
        cast(principal as decimal(38, 18)) as principal,
        cast(interest as decimal(38, 18)) as interest,
        cast("interestRate" as decimal(38, 18)) as interest_rate,
        "type" as interest_type,
        timezone('UTC', "interestAccuredTime") as accrued_at,
        "isolatedSymbol" as isolated_symbol,
        _api as api,
        _partition as fetch_partition,
        _run_id as run_id,
        timezone('UTC', _fetched_at) as fetched_at
    from source
),

hashed as (
    select
        *,
        content_hash([
            asset,
            coalesce(raw_asset, ''),
            coalesce(isolated_symbol, ''),
            cast(principal as varchar),
            cast(interest as varchar),
            cast(interest_rate as varchar),
            interest_type,
            cast(epoch_ms(accrued_at) as varchar)
        ]) as content_hash
    from renamed
),

latest as (
    select * from latest_by_tx_id_or_content(hashed)
),

final as (
    select
        row_key as interest_key,
        * exclude (row_key, content_hash)
    from latest
)

select * from final
