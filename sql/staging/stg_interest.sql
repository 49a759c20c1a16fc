-- Interest charges: one row per real charge.
-- Two genuinely identical rows (same asset, hour, principal, rate, amount and type: e.g. two
-- loans of the same size) are both real, so identical content is not a key. The key is:
--   * txId, when the API sent one (current API);
--   * otherwise a content hash plus the ordinal among identical rows WITHIN ONE FETCH, a fetch
--     being the rows one run read for one partition (_run_id, _partition). A row re-read by a
--     later run (look-back windows, retries) gets the same ordinal again and is counted once;
--     two identical rows in one fetch get ordinals 1 and 2 and both count. So the number of
--     rows kept for a content is the most seen in any single fetch. This relies on the lake
--     writer's contract that one run never reads overlapping windows of one partition.
--   * a content seen both with txIds and without (API generations mixed) keeps
--     max(keyed, unkeyed) rows: unkeyed rows only beyond the number of keyed ones.
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
            '|', asset, coalesce(raw_asset, ''), coalesce(isolated_symbol, ''),
            cast(principal as varchar), cast(interest as varchar),
            cast(interest_rate as varchar), interest_type,
            cast(epoch_ms(accrued_at) as varchar)
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

-- instants where rows without txId exist: only there can a keyed row share their content
unkeyed_slots as (
    select distinct account, asset, accrued_at from unkeyed
),

keyed_counts as (
    select
        renamed.account,
        md5(concat_ws(
            '|', renamed.asset, coalesce(renamed.raw_asset, ''),
            coalesce(renamed.isolated_symbol, ''), cast(renamed.principal as varchar),
            cast(renamed.interest as varchar), cast(renamed.interest_rate as varchar),
            renamed.interest_type, cast(epoch_ms(renamed.accrued_at) as varchar)
        )) as content_hash,
        count(distinct renamed.tx_id) as keyed_rows
    from renamed
    inner join unkeyed_slots
        on renamed.account = unkeyed_slots.account
        and renamed.asset = unkeyed_slots.asset
        and renamed.accrued_at = unkeyed_slots.accrued_at
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
        cast(tx_id as varchar) as interest_key,
        *
    from keyed
    union all by name
    select
        content_hash || '#' || ordinal as interest_key,
        * exclude (content_hash, ordinal)
    from unkeyed_kept
)

select * from final
