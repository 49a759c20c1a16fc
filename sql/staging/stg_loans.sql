-- Loans (borrows), both API generations folded into one shape (the seed/legacy rows lack
-- amount, interest and type): one row per loan, the latest version seen.
-- Key: txId. Rows without one (the seed API) are keyed like stg_interest
-- (latest_by_tx_id_or_content in macros.sql): a content hash of what never changes (asset,
-- principal, time, isolated symbol; not the status, which moves from PENDING to CONFIRMED)
-- plus the ordinal among identical rows within one fetch (run, partition).
-- test: unique(account, loan_key)
-- test: not_null(account, loan_key, asset, principal, status, loaned_at)
-- test: accepted_values(status: LOAN_STATUSES)
with source as (
    select * from src_loans
),

renamed as (
    select
        coalesce(_account, account) as account,
        "txId" as tx_id,
        asset,
        cast(principal as decimal(38, 18)) as principal,
        cast(coalesce(amount, principal) as decimal(38, 18)) as amount,
        cast(coalesce(interest, 0) as decimal(38, 18)) as interest,
        "type" as borrow_type,
        status,
        timezone('UTC', "timestamp") as loaned_at,
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
            cast(principal as varchar),
            cast(epoch_ms(loaned_at) as varchar),
            coalesce(isolated_symbol, '')
        ]) as content_hash
    from renamed
),

latest as (
    select * from latest_by_tx_id_or_content(hashed)
),

final as (
    select
        row_key as loan_key,
        * exclude (row_key, content_hash)
    from latest
)

select * from final
