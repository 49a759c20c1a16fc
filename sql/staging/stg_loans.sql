-- Loans (borrows), both API generations folded into one shape (the seed/legacy rows lack
-- amount, interest and type): one row per loan, the latest version seen.
-- Key: txId. Rows without one (the seed API) are keyed like stg_interest: a content hash of
-- what never changes (asset, principal, time, isolated symbol; not the status, which moves from
-- PENDING to CONFIRMED) plus the ordinal among identical rows within one fetch (run, partition).
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

keyed as (
    select *
    from renamed
    where tx_id is not null
    qualify row_number() over (
        partition by account, tx_id order by fetched_at desc, run_id desc
    ) = 1
),

unkeyed as (
    select
        *,
        md5(concat_ws(
            '|', asset, cast(principal as varchar), cast(epoch_ms(loaned_at) as varchar),
            coalesce(isolated_symbol, '')
        )) as content_hash
    from renamed
    where tx_id is null
),

unkeyed_ordinals as (
    select
        *,
        row_number() over (
            partition by account, content_hash, run_id, fetch_partition order by fetched_at
        ) as ordinal
    from unkeyed
),

unkeyed_latest as (
    select *
    from unkeyed_ordinals
    qualify row_number() over (
        partition by account, content_hash, ordinal order by fetched_at desc, run_id desc
    ) = 1
),

-- the same loan read with a txId (current API) and without (seed API) is counted once;
-- only instants where rows without txId exist need looking at
unkeyed_slots as (
    select distinct account, asset, loaned_at from unkeyed
),

keyed_counts as (
    select
        renamed.account,
        md5(concat_ws(
            '|', renamed.asset, cast(renamed.principal as varchar),
            cast(epoch_ms(renamed.loaned_at) as varchar), coalesce(renamed.isolated_symbol, '')
        )) as content_hash,
        count(distinct renamed.tx_id) as keyed_rows
    from renamed
    inner join unkeyed_slots
        on renamed.account = unkeyed_slots.account
        and renamed.asset = unkeyed_slots.asset
        and renamed.loaned_at = unkeyed_slots.loaned_at
    where renamed.tx_id is not null
    group by all
),

unkeyed_kept as (
    select unkeyed_latest.*
    from unkeyed_latest
    left join keyed_counts
        on unkeyed_latest.account = keyed_counts.account
        and unkeyed_latest.content_hash = keyed_counts.content_hash
    where unkeyed_latest.ordinal > coalesce(keyed_counts.keyed_rows, 0)
),

final as (
    select
        cast(tx_id as varchar) as loan_key,
        *
    from keyed
    union all by name
    select
        content_hash || '#' || ordinal as loan_key,
        * exclude (content_hash, ordinal)
    from unkeyed_kept
)

select * from final
