-- FIFO lots per account and base asset, from the account's cross-margin fills
-- (statement_lot_fills): the k-th unit bought is matched with the k-th unit sold, whichever
-- came first, which is FIFO for a position that may also go short (a sale before any
-- purchase opens a short lot that later purchases close). A match takes a share of each
-- fill's cost and proceeds: amount x units / fill units, rounded down to 10 decimals by the
-- cumulative difference, so the shares of one fill add up to it exactly. Holdings transferred
-- in carry no cost here: they are no lot. One row per match; the closing fill is the later
-- one (closed_at). Rebuilt since a cut, the new fills meet the fills still open at it.
-- grain: time(closed_at)
-- test: not_null(account, base_asset, matched_qty, closing_trade_key)
with fills as (
    select * from statement_lot_fills
),

kept as (
    select * from kept_statement_lot_fills
),

cuts as (
    select * from build_cuts
),

new_fills as (
    select fills.*
    from fills
    left join cuts on fills.account = cuts.account
    where cuts.cut_at is null or fills.traded_at >= cuts.cut_at
),

-- each side's units before the cut; a fill before it is still open while the other side's
-- units have not reached its end
totals as (
    select
        account,
        base_asset,
        side,
        max(units_to) as units
    from kept
    group by all
),

open_fills as (
    select kept.*
    from kept
    left join totals as other_side
        on kept.account = other_side.account
        and kept.base_asset = other_side.base_asset
        and kept.side <> other_side.side
    where kept.units_to > coalesce(other_side.units, 0)
),

ranged as (
    select * from new_fills
    union all by name
    select * from open_fills
),

buys as (
    select
        *,
        side_rank as buy_rank
    from ranged
    where side = 'BUY'
),

-- the buys before the first one here (closed at the cut, or none)
buy_floors as (
    select
        account,
        base_asset,
        min(buy_rank) - 1 as buys_before
    from buys
    group by all
),

sells as (
    select * from ranged
    where side = 'SELL'
),

-- A sale's units [units_from, units_to) meet the buys whose units overlap them. A fill's
-- units are positive, so along the buys both ends only grow and those buys are consecutive:
-- after the buys ending at or before the sale's first unit, up to the last one starting
-- before its end. Finding them by rank (as-of joins, then an equality join) keeps the match
-- linear in the fills; an overlap join with an account's only key was quadratic in them.
buy_ends as (
    select
        account,
        base_asset,
        units_to,
        max(buy_rank) as buys_ended
    from buys
    group by all
),

buy_starts as (
    select
        account,
        base_asset,
        units_from,
        max(buy_rank) as buys_started
    from buys
    group by all
),

sale_spans as (
    select
        sells.*,
        coalesce(buy_ends.buys_ended, buy_floors.buys_before) + 1 as first_buy_rank,
        buy_starts.buys_started as last_buy_rank
    from sells
    asof left join buy_ends
        on sells.account = buy_ends.account
        and sells.base_asset = buy_ends.base_asset
        and buy_ends.units_to <= sells.units_from
    asof inner join buy_starts
        on sells.account = buy_starts.account
        and sells.base_asset = buy_starts.base_asset
        and buy_starts.units_from < sells.units_to
    inner join buy_floors
        on sells.account = buy_floors.account
        and sells.base_asset = buy_floors.base_asset
),

sale_buys as (
    select
        *,
        unnest(range(first_buy_rank, last_buy_rank + 1)) as buy_rank
    from sale_spans
    where last_buy_rank >= first_buy_rank
),

matches as (
    select
        buys.account,
        buys.base_asset,
        greatest(buys.units_from, sells.units_from) as match_from,
        least(buys.units_to, sells.units_to) as match_to,
        buys.trade_key as buy_key,
        buys.traded_at as buy_at,
        buys.trade_id as buy_trade_id,
        buys.symbol as buy_symbol,
        buys.quote_asset as buy_quote,
        buys.units_e8 as buy_units_e8,
        buys.quote_e10 as buy_quote_e10,
        buys.value_e10 as buy_value_e10,
        -- where the match lies in each fill's units
        match_start_e8(buys.units_from, sells.units_from) as buy_from_e8,
        match_end_e8(buys.units_from, buys.units_to, buys.units_e8, sells.units_to) as buy_to_e8,
        sells.trade_key as sell_key,
        sells.traded_at as sell_at,
        sells.trade_id as sell_trade_id,
        sells.symbol as sell_symbol,
        sells.quote_asset as sell_quote,
        sells.units_e8 as sell_units_e8,
        sells.quote_e10 as sell_quote_e10,
        sells.value_e10 as sell_value_e10,
        match_start_e8(sells.units_from, buys.units_from) as sell_from_e8,
        match_end_e8(sells.units_from, sells.units_to, sells.units_e8, buys.units_to)
            as sell_to_e8
    from buys
    inner join sale_buys as sells
        on buys.account = sells.account
        and buys.base_asset = sells.base_asset
        and buys.buy_rank = sells.buy_rank
),

shares as (
    select
        *,
        match_to - match_from as matched_qty,
        share_of(buy_quote_e10, buy_from_e8, buy_to_e8, buy_units_e8) as cost_quote,
        share_of(buy_value_e10, buy_from_e8, buy_to_e8, buy_units_e8) as cost_value,
        share_of(sell_quote_e10, sell_from_e8, sell_to_e8, sell_units_e8) as proceeds_quote,
        share_of(sell_value_e10, sell_from_e8, sell_to_e8, sell_units_e8) as proceeds_value,
        (sell_at, sell_trade_id) > (buy_at, buy_trade_id) as sale_closes
    from matches
),

final as (
    select
        account,
        base_asset,
        case when sale_closes then sell_key else buy_key end as closing_trade_key,
        case when sale_closes then buy_key else sell_key end as opening_trade_key,
        case when sale_closes then buy_at else sell_at end as opened_at,
        case when sale_closes then sell_at else buy_at end as closed_at,
        buy_quote = sell_quote as is_same_quote,
        cast(matched_qty as decimal(38, 18)) as matched_qty,
        cost_quote,
        proceeds_quote,
        cost_value,
        proceeds_value
    from shares
)

select * from final
