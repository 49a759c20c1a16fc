-- Macros the models use, created before them (persisted in the warehouse with the models).
-- A table macro reads the relation it is given (a model or a CTE of the caller) by name
-- through query_table; an argument that is an expression, such as a key `(account, tx_id)`,
-- is read over that relation's columns.

-- A decimal as plain text: no exponent, trailing zeros of the fraction removed, no bare point
-- ("1.500000000000000000" -> "1.5", "0E-18" -> "0"). Same rule as the CSV reports.
create or replace macro plain_decimal(x) as (
    rtrim(rtrim(cast(cast(x as decimal(38, 18)) as varchar), '0'), '.')
);

-- A naive UTC timestamp as ISO-8601 with milliseconds and a Z.
create or replace macro iso_utc(t) as (
    strftime(t, '%Y-%m-%dT%H:%M:%S.%g') || 'Z'
);

-- Exact arithmetic on amounts in integers of 1e-8 (HUGEINT): every amount Binance reports has
-- at most 8 decimals (data tests check it), so to_units is exact, and a product of two amounts
-- (up to 1e20 each, the lake's DECIMAL(38, 18)) cannot overflow where its result can be held.
create or replace macro to_units(x) as (
    cast(floor(x) as hugeint) * 100000000 + cast((x - floor(x)) * 100000000 as hugeint)
);

create or replace macro from_units(units) as (
    cast(cast(units as decimal(38, 0)) * cast(0.00000001 as decimal(9, 8)) as decimal(38, 18))
);

-- The exact product of two amounts (price x qty): units x units is in 1e-16.
create or replace macro exact_product(a, b) as (
    cast(
        cast(to_units(a) * to_units(b) as decimal(38, 0))
        * cast(0.0000000000000001 as decimal(17, 16))
        as decimal(38, 18)
    )
);

-- One hour's interest in units, ceil8(principal x daily rate / 24): ceil(p x r / (24 x 1e8))
-- over units of 1e-8. Null for a rate above 100 a day (the product could pass HUGEINT; no
-- real rate comes near).
create or replace macro hourly_interest_units(principal, daily_rate) as (
    case
        when to_units(daily_rate) between 0 and 10000000000
            then (to_units(principal) * to_units(daily_rate) + 2399999999) // 2400000000
    end
);

-- Every sum of a subset of `amounts` (a list; 0 is the empty subset). A PENDING row excuses its
-- own amount only: a difference is excused when it is the sum of some pending rows' amounts
-- (those that will confirm, or those that will fail). Past 12 rows (4096 sums) only the
-- bound is checked: |difference| <= the sum of their sizes.
create or replace macro subset_sums(amounts) as (
    list_reduce(  -- noqa: PRS
        amounts,
        lambda sums, amount: list_distinct(
            list_concat(sums, list_transform(sums, lambda total: total + amount))
        ),
        [cast(0 as decimal(38, 18))]
    )
);

create or replace macro is_excused(difference, amounts) as (
    case
        when difference = 0 then true
        when coalesce(len(amounts), 0) = 0 then false
        when len(amounts) <= 12 then list_contains(subset_sums(amounts), difference)
        else abs(difference) <= list_sum(list_transform(amounts, lambda a: abs(a)))  -- noqa: PRS
    end
);

-- How far a live snapshot's time may be off: the 5 s a signed request may lag the server
-- (recvWindow) plus a few seconds of a server clock that jumped (int_snapshot_stamps).
create or replace macro stamp_tolerance() as (
    to_milliseconds(10000)
);

-- Whether a live snapshot's stamp explains `difference`: the snapshot agrees with the ledger
-- at an instant within its stamp's tolerance (one of `shifts`, int_snapshot_stamps).
create or replace macro is_stamp_shift(difference, shifts) as (
    coalesce(list_contains(shifts, difference), false)
);

-- The shifts an interval's two live ends allow together: one instant for each snapshot (a
-- null side is a snapshot that is not live, its time exact).
create or replace macro both_ends_shifts(end_shifts, start_shifts) as (
    case
        when end_shifts is null then start_shifts
        when start_shifts is null then end_shifts
        else list_sort(list_distinct(flatten(list_transform(end_shifts, lambda e: list_transform(start_shifts, lambda s: e + s)))))  -- noqa: PRS, LT05
    end
);

-- A reconciliation row's status: `unverified` where the history it needs was not read
-- completely (or nothing anchors it), `matched` for a zero difference or one that lines near a
-- live snapshot explain (is_stamp_shift over `stamp_shifts`); another non-zero one is
-- `provisional` when young PENDING rows explain exactly that much (is_excused) or the row
-- ends within the late-arrival window of the account's newest fetch, and `break` otherwise.
create or replace macro recon_status(
    difference, is_checkable, pending_amounts, is_within_late_window, stamp_shifts := null
) as (
    case
        when not coalesce(is_checkable, false) then 'unverified'
        when difference = 0 then 'matched'
        when is_stamp_shift(difference, stamp_shifts) then 'matched'
        when is_excused(difference, pending_amounts) then 'provisional'
        when coalesce(is_within_late_window, false) then 'provisional'
        else 'break'
    end
);

-- A term of a break as text, "name=amount"; nonzero_term is null for a zero amount (concat_ws
-- then leaves it out).
create or replace macro term(name, amount) as (
    name || '=' || plain_decimal(amount)
);

create or replace macro nonzero_term(name, amount) as (
    case when amount <> 0 then term(name, amount) end
);

-- The content hash of a row without a key: its fields (text, in a fixed order) joined by '|'.
create or replace macro content_hash(fields) as (
    md5(array_to_string(fields, '|'))
);

-- The latest version of each row of `versions` per `version_key`: the one fetched last, then
-- by the newest run id. Every staging model keeps only this version of a row.
create or replace macro latest_version(versions, version_key) as table
    select *
    from query_table(versions)
    qualify row_number() over (
        partition by version_key order by fetched_at desc, run_id desc
    ) = 1;

-- One row per real row of a stream whose rows may come without a key (interest charges,
-- seed-API loans), with its `row_key`. Two genuinely identical rows can both be real, so
-- identical content is not a key:
--   * a row with a txId is keyed by it (row_key = txId), its latest version kept;
--   * a row without one is keyed by its content hash plus its ordinal among identical rows
--     WITHIN ONE FETCH, a fetch being what one run read for one partition (run_id,
--     fetch_partition): a re-read by a later run gets the same ordinal again and is counted
--     once, two identical rows in one fetch get ordinals 1 and 2 and both count
--     (row_key = 'hash#ordinal'). This relies on the lake writer's contract that one run never
--     reads overlapping windows of one partition;
--   * a content seen both with txIds and without (API generations mixed) keeps
--     max(keyed, unkeyed) rows: unkeyed rows only beyond the number of keyed ones.
-- `versions` holds account, tx_id, content_hash, run_id, fetch_partition and fetched_at.
create or replace macro latest_by_tx_id_or_content(versions) as table
    with keyed_versions as (
        select *
        from query_table(versions)
        where tx_id is not null
    ),

    unkeyed_versions as (
        select
            *,
            row_number() over (
                partition by account, content_hash, run_id, fetch_partition order by fetched_at
            ) as ordinal
        from query_table(versions)
        where tx_id is null
    ),

    keyed as (
        select * from latest_version(keyed_versions, (account, tx_id))
    ),

    unkeyed as (
        select * from latest_version(unkeyed_versions, (account, content_hash, ordinal))
    ),

    keyed_counts as (
        select
            keyed_versions.account,
            keyed_versions.content_hash,
            count(distinct keyed_versions.tx_id) as keyed_rows
        from keyed_versions
        semi join unkeyed_versions
            on keyed_versions.account = unkeyed_versions.account
            and keyed_versions.content_hash = unkeyed_versions.content_hash
        group by keyed_versions.account, keyed_versions.content_hash
    ),

    unkeyed_kept as (
        select unkeyed.*
        from unkeyed
        left join keyed_counts
            on unkeyed.account = keyed_counts.account
            and unkeyed.content_hash = keyed_counts.content_hash
        where unkeyed.ordinal > coalesce(keyed_counts.keyed_rows, 0)
    )

    select
        cast(tx_id as varchar) as row_key,
        *
    from keyed
    union all by name
    select
        content_hash || '#' || ordinal as row_key,
        * exclude (ordinal)
    from unkeyed_kept;

-- An amount valued at a price, exactly: both cast to 10 decimals first (Binance sends at most
-- 8), so the product keeps every digit and fits DECIMAL(38, 18). Null when either is null.
create or replace macro valued(amount, price) as (
    cast(cast(amount as decimal(38, 10)) * cast(price as decimal(38, 10)) as decimal(38, 18))
);

-- An amount in integers of 1e-10 and a quantity in integers of 1e-8 (Binance quantities carry
-- at most 8 decimals), rounded: the terms of share_of. Each rescale of a DECIMAL(38, _) is a
-- 128-bit division, so a model converts each value once, not in every share.
create or replace macro in_e10(amount) as (
    cast(cast(amount as decimal(38, 10)) * 10000000000 as hugeint)
);

create or replace macro in_e8(units) as (
    cast(cast(units as decimal(38, 8)) * 100000000 as hugeint)
);

-- Where a match of two fills lies in one fill's units, (from_e8, to_e8] for share_of: one of
-- the two fills' ranges starts the match and one ends it, so the start is 0 unless the other
-- fill starts later, and the end is the fill's own units unless the other one ends sooner.
create or replace macro match_start_e8(own_from, other_from) as (
    case when other_from > own_from then in_e8(other_from - own_from) else 0 end
);

create or replace macro match_end_e8(own_from, own_to, own_units_e8, other_to) as (
    case when other_to < own_to then in_e8(other_to - own_from) else own_units_e8 end
);

-- The share of an amount (in_e10) that units (from_e8, to_e8] of a fill of units_e8 carry
-- (in_e8): amount x units / fill units, as the difference of two cumulative shares rounded
-- down to 10 decimals, so a fill's shares add up to its amount exactly. The cumulative share
-- at 0 is 0 and at the fill's units is the amount: no division for those.
create or replace macro share_of(amount_e10, from_e8, to_e8, units_e8) as (
    cast(cast(
        (
            case
                when to_e8 = units_e8 then amount_e10 else amount_e10 * to_e8 // units_e8
            end
            - case when from_e8 = 0 then 0 else amount_e10 * from_e8 // units_e8 end
        ) as decimal(38, 0)
    ) * cast(0.0000000001 as decimal(38, 10)) as decimal(38, 18))
);
