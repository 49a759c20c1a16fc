-- FIFO lots per account and base asset, from the account's cross-margin fills (trades and
-- liquidation fills): the k-th unit bought is matched with the k-th unit sold, whichever
-- came first, which is FIFO for a position that may also go short (a sale before any
-- purchase opens a short lot that later purchases close). A fill's units are what it moved:
-- a buy acquires qty less a fee taken in the base asset, a sale disposes of qty plus one.
-- Its cost (buy) or proceeds (sale) in the quote asset include the fee when the fee is in
-- the quote asset; in the reporting currency they are the quote amount at the quote's close
-- of the fill's day (1 for the currency itself), and a fee in a third asset (BNB) at that
-- asset's close. A match takes a share of each fill's cost and proceeds: amount x units /
-- fill units, rounded down to 10 decimals by the cumulative difference, so the shares of one
-- fill add up to it exactly. Holdings transferred in carry no cost here: they are no lot.
-- One row per match; the closing fill is the later one.
-- test: not_null(account, base_asset, matched_qty, closing_trade_key)
with trades as (
    select * from stg_trades
),

symbols as (
    select * from int_symbols
),

liquidations as (
    select * from stg_liquidations
),

prices as (
    select * from statement_prices
),

currencies as (
    select * from statement_currencies
),

fills as (
    select
        trades.account,
        trades.trade_key,
        trades.trade_id,
        trades.order_id,
        trades.symbol,
        trades.side,
        trades.traded_at,
        cast(trades.traded_at as date) as fill_day,
        trades.price,
        trades.qty,
        trades.commission,
        trades.commission_asset,
        symbols.base_asset,
        symbols.quote_asset,
        currencies.report_currency,
        liquidations.order_id is not null as is_liquidation,
        coalesce(
            trades.quote_qty,
            cast(
                cast(trades.price as decimal(38, 10)) * cast(trades.qty as decimal(38, 10))
                as decimal(38, 18)
            )
        ) as quote_qty
    from trades
    inner join symbols on trades.symbol = symbols.symbol
    inner join currencies on trades.account = currencies.account
    left join liquidations
        on trades.account = liquidations.account
        and trades.symbol = liquidations.symbol
        and trades.order_id = liquidations.order_id
    where not coalesce(trades.is_isolated, false)
),

fill_days as (
    select distinct
        account,
        fill_day
    from fills
),

priced_assets as (
    select distinct
        account,
        asset
    from prices
),

-- The close in force on each day with fills, per priced asset: the day's close or the latest
-- before it. The fills join it on the day; an as-of join of the fills themselves would sort
-- every fill, twice, even when there is no close at all.
day_closes as (
    select
        fill_days.account,
        priced_assets.asset,
        fill_days.fill_day,
        prices.close_price
    from fill_days
    inner join priced_assets on fill_days.account = priced_assets.account
    asof left join prices
        on priced_assets.account = prices.account
        and priced_assets.asset = prices.asset
        and prices.price_day <= fill_days.fill_day
),

fee_prices as (
    select
        fills.*,
        case
            when fills.quote_asset = fills.report_currency then 1 else quote_closes.close_price
        end as quote_close,
        case
            when fills.commission_asset = fills.report_currency then 1
            else fee_closes.close_price
        end as fee_close
    from fills
    left join day_closes as quote_closes
        on fills.account = quote_closes.account
        and fills.quote_asset = quote_closes.asset
        and fills.fill_day = quote_closes.fill_day
    left join day_closes as fee_closes
        on fills.account = fee_closes.account
        and fills.commission_asset = fee_closes.asset
        and fills.fill_day = fee_closes.fill_day
),

sized as (
    select
        *,
        case
            when commission_asset = base_asset then commission else 0
        end as base_fee,
        case
            when commission_asset = quote_asset then commission else 0
        end as quote_fee,
        case
            when commission_asset not in (base_asset, quote_asset)
                then valued(commission, fee_close)
            else 0
        end as other_fee_value
    from fee_prices
),

legs as (
    select
        *,
        case side when 'BUY' then qty - base_fee else qty + base_fee end as units,
        case side when 'BUY' then quote_qty + quote_fee else quote_qty - quote_fee end
            as quote_amount,
        -- a fill in the reporting currency, with no fee in a third asset, is worth its quote
        -- amount: no product to take
        quote_close = 1 and other_fee_value = 0 as is_worth_quote
    from sized
),

-- a fill's units and amounts in the integers share_of takes, once per fill
converted as (
    select
        *,
        in_e8(units) as units_e8,
        in_e10(quote_amount) as quote_e10
    from legs
),

ranged as (
    select
        *,
        sum(units) over running - units as units_from,
        sum(units) over running as units_to,
        -- a buy's rank among the account's buys of its base asset, which the sales meet
        row_number() over running as side_rank,
        case
            when is_worth_quote then quote_e10
            when side = 'BUY'
                then in_e10(valued(quote_qty + quote_fee, quote_close) + other_fee_value)
            else in_e10(valued(quote_qty - quote_fee, quote_close) - other_fee_value)
        end as value_e10
    from converted
    window running as (
        partition by account, base_asset, side
        order by traded_at, symbol, trade_id
        rows between unbounded preceding and current row
    )
),

buys as (
    select
        *,
        side_rank as buy_rank
    from ranged
    where side = 'BUY'
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
        coalesce(buy_ends.buys_ended, 0) + 1 as first_buy_rank,
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
        buy_quote = sell_quote as is_same_quote,
        cast(matched_qty as decimal(38, 18)) as matched_qty,
        cost_quote,
        proceeds_quote,
        cost_value,
        proceeds_value
    from shares
)

select * from final
