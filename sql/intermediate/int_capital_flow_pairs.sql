-- The capital-flow cross-check (facts §5.11): each capital-flow row is explained by exactly one
-- typed row, and each typed row that moves a balance appears in the capital flow, where both
-- were read (the capital flow is kept 90 days). Keys: the row's class and its transaction id
-- (tranId = the typed row's txId, or for a fill its trade id and leg):
--   transfer  TRANSFER                         transfers (ROLL_IN +, ROLL_OUT -)
--   borrow    BORROW                           loans (+ principal)
--   repay     REPAY, REPAY_LIQUIDATION         repays (- amount in the asset; a BNB_AUTO_REPAY
--                                              in BNB, any amount: the BNB is booked from the
--                                              capital flow; a POINT_AUTO_REPAY 0)
--   trade     BUY_/SELL_INCOME, _EXPENSE, _LIQUIDATION, TRADING_COMMISSION
--                                              fills: base, quote and commission legs
--   interest  BNB_INTEREST_DEDUCTION           charges paid in BNB (- the BNB)
-- and rows no typed stream holds: a LIQUIDATION_FEE is explained by a force liquidation at the
-- same instant, a conversion (SMALL_BALANCE_CONVERT, SMALL_CONVERT) by its other leg (one
-- tranId, assets out and in), other types by themselves.
-- match_status: matched, differs (both sides, another asset, amount or time), missing_typed,
-- missing_flow (int_capital_flow_matches adds each row's status). Typed rows older than the
-- capital flow's start are left out (int_capital_flow_windows); flow_side, typed_side and
-- description name both sides of a row that does not match.
-- Rows pair by transaction id whatever their times, so a rebuild since a cut makes again every
-- id with a row at or after the cut, in the capital flow or the typed history, or with one in
-- the last build (last_at): all of that id's rows, however old, pair again. first_at and
-- last_at are a row's earliest and latest side; pair_tran_id its id.
-- grain: time(first_at), key(pair_tran_id)
-- keeps: pair_tran_id bigint, last_at timestamp
-- test: unique(account, match_key)
-- test: accepted_values(match_status: matched, differs, missing_typed, missing_flow)
with flows as (
    select * from int_capital_flow
),

older_flows as (
    select * from kept_int_capital_flow
),

transfers as (
    select * from stg_transfers
),

loans as (
    select * from stg_loans
),

repays as (
    select * from stg_repays
),

ledger as (
    select * from int_ledger
),

older_ledger as (
    select * from kept_int_ledger
),

liquidations as (
    select * from stg_liquidations
),

windows as (
    select * from int_capital_flow_windows
),

cuts as (
    select * from build_cuts
),

kept as (
    select * from kept_int_capital_flow_pairs
),

-- the rows at or after each account's cut (in a whole build, every row)
recent_flows as (
    select flows.*
    from flows
    anti join cuts on flows.account = cuts.account and flows.flowed_at < cuts.cut_at
),

-- the ledger's lines that type a row (a fill's legs, a charge paid in BNB), from where the
-- capital flow was read on: it is kept 90 days, so most of a long history is left out here
typing_ledger as (
    select ledger.*
    from ledger
    semi join windows
        on ledger.account = windows.account
        and ledger.ledger_at >= windows.checked_from
    where ledger.source_stream = 'trades' or ledger.entry_type = 'INTEREST_CONVERTED'
),

recent_ledger as (
    select typing_ledger.*
    from typing_ledger
    anti join cuts
        on typing_ledger.account = cuts.account
        and typing_ledger.ledger_at < cuts.cut_at
),

-- the typed streams' transaction ids and times, whatever their status
stream_ids as (
    select
        account,
        tx_id as tran_id,
        transferred_at as happened_at
    from transfers
    union all
    select
        account,
        tx_id as tran_id,
        loaned_at as happened_at
    from loans
    union all
    select
        account,
        tx_id as tran_id,
        repaid_at as happened_at
    from repays
),

-- the ids made again: those of a recent row, and those a kept row reached the cut with (of
-- the accounts rebuilt: a whole build reads no older row)
touched as (
    select
        recent_flows.account,
        recent_flows.tran_id
    from recent_flows
    semi join cuts on recent_flows.account = cuts.account
    union
    select
        recent_ledger.account,
        case
            when recent_ledger.source_stream = 'trades' then recent_ledger.trade_id
            else recent_ledger.tx_id
        end as tran_id
    from recent_ledger
    semi join cuts on recent_ledger.account = cuts.account
    union
    select
        stream_ids.account,
        stream_ids.tran_id
    from stream_ids
    semi join cuts
        on stream_ids.account = cuts.account and stream_ids.happened_at >= cuts.cut_at
    union
    select
        kept.account,
        kept.pair_tran_id as tran_id
    from kept
    semi join cuts on kept.account = cuts.account and kept.last_at >= cuts.cut_at
),

-- every row of the ids made again: the recent ones, and the older ones of those ids
flow_candidates as (
    select * from recent_flows
    union all by name
    select older_flows.*
    from older_flows
    semi join touched
        on older_flows.account = touched.account
        and older_flows.tran_id is not distinct from touched.tran_id
),

checked_ledger as (
    select * from recent_ledger
    union all by name
    select older_ledger.*
    from older_ledger
    semi join windows
        on older_ledger.account = windows.account
        and older_ledger.ledger_at >= windows.checked_from
    semi join touched
        on older_ledger.account = touched.account
        and case
            when older_ledger.source_stream = 'trades' then older_ledger.trade_id
            else older_ledger.tx_id
        end = touched.tran_id
    where older_ledger.source_stream = 'trades' or older_ledger.entry_type = 'INTEREST_CONVERTED'
),

typed_transfers as (
    select
        account,
        'transfer' as flow_class,
        '' as symbol,
        tx_id as tran_id,
        '' as leg,
        asset,
        case transfer_type when 'ROLL_IN' then amount else -amount end as amount,
        true as is_amount_known,
        transferred_at as happened_at,
        status,
        'transfers:' || transfer_key as row_key,
        'transfer txId ' || tx_id as typed_row
    from transfers
    where status <> 'FAILED' and isolated_symbol is null
),

typed_loans as (
    select
        account,
        'borrow' as flow_class,
        '' as symbol,
        tx_id as tran_id,
        '' as leg,
        asset,
        principal as amount,
        true as is_amount_known,
        loaned_at as happened_at,
        status,
        'loans:' || loan_key as row_key,
        'loan txId ' || tx_id as typed_row
    from loans
    where status <> 'FAILED' and isolated_symbol is null and tx_id is not null
),

typed_repays as (
    select
        account,
        'repay' as flow_class,
        '' as symbol,
        tx_id as tran_id,
        '' as leg,
        case repay_type when 'BNB_AUTO_REPAY' then 'BNB' else asset end as asset,
        case repay_type when 'POINT_AUTO_REPAY' then 0 else -amount end as amount,
        coalesce(repay_type, '') <> 'BNB_AUTO_REPAY' as is_amount_known,
        repaid_at as happened_at,
        status,
        'repays:' || repay_key as row_key,
        coalesce(repay_type || ' ', '') || 'repay txId ' || tx_id || ' of '
        || plain_decimal(amount) || ' ' || asset as typed_row
    from repays
    where status <> 'FAILED' and isolated_symbol is null
),

typed_fills as (
    select
        account,
        'trade' as flow_class,
        symbol,
        trade_id as tran_id,
        case
            when entry_type in ('TRADE_BASE', 'LIQUIDATION_BASE') then 'base'
            when entry_type in ('TRADE_QUOTE', 'LIQUIDATION_QUOTE') then 'quote'
            else 'commission'
        end as leg,
        asset,
        balance_effect as amount,
        true as is_amount_known,
        ledger_at as happened_at,
        status,
        entry_key as row_key,
        'fill ' || symbol || ' id ' || trade_id || ' ' || leg || ' leg' as typed_row
    from checked_ledger
    where source_stream = 'trades'
),

typed_interest as (
    select
        account,
        'interest' as flow_class,
        '' as symbol,
        tx_id as tran_id,
        '' as leg,
        asset,
        balance_effect as amount,
        true as is_amount_known,
        ledger_at as happened_at,
        status,
        entry_key as row_key,
        'charge paid in BNB txId ' || tx_id as typed_row
    from checked_ledger
    where entry_type = 'INTEREST_CONVERTED'
),

stream_typed_rows as (
    select * from typed_transfers
    union all by name
    select * from typed_loans
    union all by name
    select * from typed_repays
),

all_typed_rows as (
    -- the recent rows, and the older ones of the ids made again (the ledger's are of those
    -- already: checked_ledger)
    select stream_typed_rows.*
    from stream_typed_rows
    anti join cuts
        on stream_typed_rows.account = cuts.account
        and stream_typed_rows.happened_at < cuts.cut_at
    union all by name
    select stream_typed_rows.*
    from stream_typed_rows
    semi join cuts
        on stream_typed_rows.account = cuts.account
        and stream_typed_rows.happened_at < cuts.cut_at
    semi join touched
        on stream_typed_rows.account = touched.account
        and stream_typed_rows.tran_id = touched.tran_id
    union all by name
    select * from typed_fills
    union all by name
    select * from typed_interest
),

-- typed rows from where the capital flow was read on (older ones cannot be checked)
typed_rows as (
    select all_typed_rows.*
    from all_typed_rows
    semi join windows
        on all_typed_rows.account = windows.account
        and all_typed_rows.happened_at >= windows.checked_from
),

flow_rows as (
    select
        *,
        case
            when flow_type = 'TRANSFER' then 'transfer'
            when flow_type = 'BORROW' then 'borrow'
            when flow_type in ('REPAY', 'REPAY_LIQUIDATION') then 'repay'
            when flow_type = 'BNB_INTEREST_DEDUCTION' then 'interest'
            when
                flow_type = 'TRADING_COMMISSION'
                or flow_type like 'BUY\_%' escape '\'
                or flow_type like 'SELL\_%' escape '\'
                then 'trade'
            when flow_type = 'LIQUIDATION_FEE' then 'fee'
            when flow_type in ('SMALL_BALANCE_CONVERT', 'SMALL_CONVERT') then 'conversion'
            else 'other'
        end as flow_class,
        case
            when flow_type = 'TRADING_COMMISSION' then 'commission'
            when flow_type like 'BUY\_%' escape '\'
                then case when amount > 0 then 'base' else 'quote' end
            when flow_type like 'SELL\_%' escape '\'
                then case when amount < 0 then 'base' else 'quote' end
            else ''
        end as leg
    from flow_candidates
),

-- each side's rows numbered among rows of the same key (a key is one row but for duplicates:
-- only those are sorted)
flow_duplicates as (
    select
        account,
        flow_class,
        coalesce(symbol, '') as match_symbol,
        tran_id,
        leg
    from flow_rows
    group by all
    having count(*) > 1
),

keyed_flows as (
    select
        flow_rows.*,
        case
            when flow_rows.flow_class = 'trade' then coalesce(flow_rows.symbol, '') else ''
        end as match_symbol,
        1 as ordinal
    from flow_rows
    anti join flow_duplicates
        on flow_rows.account = flow_duplicates.account
        and flow_rows.flow_class = flow_duplicates.flow_class
        and coalesce(flow_rows.symbol, '') = flow_duplicates.match_symbol
        and flow_rows.tran_id = flow_duplicates.tran_id
        and flow_rows.leg = flow_duplicates.leg
    where flow_rows.flow_class in ('transfer', 'borrow', 'repay', 'trade', 'interest')
    union all by name
    select
        flow_rows.*,
        case
            when flow_rows.flow_class = 'trade' then coalesce(flow_rows.symbol, '') else ''
        end as match_symbol,
        row_number() over (
            partition by
                flow_rows.account, flow_rows.flow_class, match_symbol,
                flow_rows.tran_id, flow_rows.leg
            order by flow_rows.flow_id
        ) as ordinal
    from flow_rows
    semi join flow_duplicates
        on flow_rows.account = flow_duplicates.account
        and flow_rows.flow_class = flow_duplicates.flow_class
        and coalesce(flow_rows.symbol, '') = flow_duplicates.match_symbol
        and flow_rows.tran_id = flow_duplicates.tran_id
        and flow_rows.leg = flow_duplicates.leg
    where flow_rows.flow_class in ('transfer', 'borrow', 'repay', 'trade', 'interest')
),

typed_duplicates as (
    select
        account,
        flow_class,
        symbol,
        tran_id,
        leg
    from typed_rows
    group by all
    having count(*) > 1
),

keyed_typed as (
    select
        typed_rows.*,
        1 as ordinal
    from typed_rows
    anti join typed_duplicates
        on typed_rows.account = typed_duplicates.account
        and typed_rows.flow_class = typed_duplicates.flow_class
        and typed_rows.symbol = typed_duplicates.symbol
        and typed_rows.tran_id = typed_duplicates.tran_id
        and typed_rows.leg = typed_duplicates.leg
    union all by name
    select
        typed_rows.*,
        row_number() over (
            partition by
                typed_rows.account, typed_rows.flow_class, typed_rows.symbol,
                typed_rows.tran_id, typed_rows.leg
            order by typed_rows.happened_at, typed_rows.row_key
        ) as ordinal
    from typed_rows
    semi join typed_duplicates
        on typed_rows.account = typed_duplicates.account
        and typed_rows.flow_class = typed_duplicates.flow_class
        and typed_rows.symbol = typed_duplicates.symbol
        and typed_rows.tran_id = typed_duplicates.tran_id
        and typed_rows.leg = typed_duplicates.leg
),

paired as (
    select
        coalesce(keyed_flows.account, keyed_typed.account) as account,
        coalesce(keyed_flows.flow_class, keyed_typed.flow_class) as flow_class,
        keyed_flows.flow_id,
        keyed_flows.flow_type,
        keyed_flows.tran_id as flow_tran_id,
        keyed_flows.asset as flow_asset,
        keyed_flows.amount as flow_amount,
        keyed_flows.flowed_at,
        keyed_typed.row_key,
        keyed_typed.typed_row,
        keyed_typed.tran_id as typed_tran_id,
        keyed_typed.asset as typed_asset,
        keyed_typed.amount as typed_amount,
        keyed_typed.is_amount_known,
        keyed_typed.happened_at,
        keyed_typed.status as typed_status
    from keyed_flows
    full outer join keyed_typed
        on keyed_flows.account = keyed_typed.account
        and keyed_flows.flow_class = keyed_typed.flow_class
        and keyed_flows.match_symbol = keyed_typed.symbol
        and keyed_flows.tran_id = keyed_typed.tran_id
        and keyed_flows.leg = keyed_typed.leg
        and keyed_flows.ordinal = keyed_typed.ordinal
),

fee_rows as (
    select
        flow_rows.account,
        flow_rows.flow_class,
        flow_rows.flow_id,
        flow_rows.flow_type,
        flow_rows.tran_id as flow_tran_id,
        flow_rows.asset as flow_asset,
        flow_rows.amount as flow_amount,
        flow_rows.flowed_at,
        min(liquidations.liquidation_key) as liquidation_key,
        count(liquidations.order_id) as liquidations_then
    from flow_rows
    left join liquidations
        on flow_rows.account = liquidations.account
        and flow_rows.flowed_at = liquidations.liquidated_at
        and not coalesce(liquidations.is_isolated, false)
    where flow_rows.flow_class = 'fee'
    group by all
),

conversion_legs as (
    select
        *,
        count(*) filter (where amount < 0) over conversion as legs_out,
        count(*) filter (where amount > 0) over conversion as legs_in,
        count(distinct asset) over conversion as assets
    from flow_rows
    where flow_class in ('conversion', 'other')
    window conversion as (partition by account, flow_class, tran_id)
),

self_explained as (
    select
        account,
        flow_class,
        flow_id,
        flow_type,
        tran_id as flow_tran_id,
        asset as flow_asset,
        amount as flow_amount,
        flowed_at,
        case
            when flow_class = 'other' then 'itself'
            when legs_out > 0 and legs_in > 0 and assets > 1 then 'its other legs'
        end as typed_row
    from conversion_legs
    union all by name
    select
        account,
        flow_class,
        flow_id,
        flow_type,
        flow_tran_id,
        flow_asset,
        flow_amount,
        flowed_at,
        case
            when liquidations_then > 0 then 'force liquidation orderId ' || liquidation_key
        end as typed_row
    from fee_rows
),

all_rows as (
    select
        *,
        case
            when flow_id is null then 'missing_flow'
            when typed_row is null then 'missing_typed'
            when flow_class in ('fee', 'conversion', 'other') then 'matched'
            when
                flow_asset <> typed_asset
                or not (
                    flowed_at = happened_at
                    -- a time the exchange served in seconds (transfer rows can be) is known
                    -- to the second only: the capital flow's instant within that second matches
                    or (
                        happened_at = date_trunc('second', happened_at)
                        and date_trunc('second', flowed_at) = happened_at
                    )
                )
                or (is_amount_known and flow_amount <> typed_amount)
                then 'differs'
            else 'matched'
        end as match_status,
        coalesce(flowed_at, happened_at) as row_at
    from paired
    union all by name
    select
        *,
        case when typed_row is null then 'missing_typed' else 'matched' end as match_status,
        flowed_at as row_at
    from self_explained
),

final as (
    select
        coalesce('flow:' || flow_id, 'typed:' || row_key) as match_key,
        account,
        flow_class,
        match_status,
        row_at,
        flow_id,
        flow_type,
        flow_tran_id,
        flow_asset,
        flow_amount,
        flowed_at,
        row_key,
        typed_row,
        typed_tran_id,
        typed_asset,
        typed_amount,
        happened_at,
        typed_status,
        case
            when match_status = 'matched' then null
            when flow_id is null then 'capital flow: none'
            else
                'capital flow ' || flow_type || ' ' || plain_decimal(flow_amount)
                || ' ' || flow_asset || ' at ' || iso_utc(flowed_at)
                || ' (id ' || flow_id || ', tranId ' || flow_tran_id || ')'
        end as flow_side,
        case
            when match_status = 'matched' then null
            when typed_row is null then 'typed history: none'
            when typed_asset is null then typed_row
            else
                typed_row || ': ' || coalesce(plain_decimal(typed_amount) || ' ', '')
                || typed_asset || ' at ' || iso_utc(happened_at)
                || case when typed_status = 'PENDING' then ' (PENDING)' else '' end
        end as typed_side,
        case flow_class
            when 'transfer' then 'transfers'
            when 'borrow' then 'loans'
            when 'repay' then 'repays'
            when 'trade' then 'trades'
            when 'interest' then 'interest'
            when 'fee' then 'liquidations'
            else 'the capital flow'
        end as typed_stream,
        case match_status
            when 'missing_typed'
                then
                    lower(replace(flow_type, '_', ' ')) || ' of ' || plain_decimal(flow_amount)
                    || ' ' || flow_asset || ' at ' || iso_utc(flowed_at)
                    || ' is in the capital flow but not in ' || typed_stream
            when 'missing_flow'
                then
                    typed_row || ' at ' || iso_utc(happened_at) || ' is in ' || typed_stream
                    || ' but not in the capital flow'
            when 'differs'
                then typed_row || ' differs from its capital-flow row'
        end as description,
        coalesce(flow_tran_id, typed_tran_id) as pair_tran_id,
        least(flowed_at, happened_at) as first_at,
        greatest(flowed_at, happened_at) as last_at
    from all_rows
)

select * from final
