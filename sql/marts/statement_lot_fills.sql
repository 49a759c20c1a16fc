-- The fills of the FIFO lots (statement_lot_matches): one row per cross-margin fill (trades
-- and liquidation fills) with the units it moved and where they lie among its base asset's
-- units bought or sold (units_from, units_to: running sums per side, in the fills' order), its
-- rank on its side, and its quote amount and value in the integers share_of takes. A buy
-- acquires qty less a fee taken in the base asset, a sale disposes of qty plus one; its cost
-- (buy) or proceeds (sale) in the quote asset include the fee when the fee is in the quote
-- asset; in the reporting currency they are the quote amount at the quote's close of the
-- fill's day (1 for the currency itself), and a fee in a third asset (BNB) at that asset's
-- close. Rebuilt since a cut, each side's sums and ranks go on from its last fill before it.
-- grain: time(traded_at)
-- keeps: base_asset varchar, side varchar, units_to decimal(38, 18), side_rank bigint
-- test: unique(account, trade_key)
-- test: not_null(account, base_asset, side, units_from, units_to, side_rank)
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

cuts as (
    select * from build_cuts
),

kept as (
    select * from kept_statement_lot_fills
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
    left join cuts on trades.account = cuts.account
    where
        not coalesce(trades.is_isolated, false)
        and (cuts.cut_at is null or trades.traded_at >= cuts.cut_at)
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

-- each side's units and fills before the cut: where the new fills' sums and ranks go on from
-- (a fill's units are positive, so its side's last fill holds the largest)
openings as (
    select
        account,
        base_asset,
        side,
        max(units_to) as units,
        max(side_rank) as fills
    from kept
    group by all
),

ranged as (
    select
        converted.*,
        coalesce(openings.units, 0) + sum(converted.units) over running - converted.units
            as units_from,
        coalesce(openings.units, 0) + sum(converted.units) over running as units_to,
        -- a fill's rank among the account's fills of its base asset and side
        coalesce(openings.fills, 0) + row_number() over running as side_rank,
        case
            when converted.is_worth_quote then converted.quote_e10
            when converted.side = 'BUY'
                then in_e10(
                    valued(converted.quote_qty + converted.quote_fee, converted.quote_close)
                    + converted.other_fee_value
                )
            else in_e10(
                valued(converted.quote_qty - converted.quote_fee, converted.quote_close)
                - converted.other_fee_value
            )
        end as value_e10
    from converted
    left join openings
        on converted.account = openings.account
        and converted.base_asset = openings.base_asset
        and converted.side = openings.side
    window running as (
        partition by converted.account, converted.base_asset, converted.side
        order by converted.traded_at, converted.symbol, converted.trade_id
        rows between unbounded preceding and current row
    )
),

final as (
    select
        account,
        trade_key,
        trade_id,
        symbol,
        side,
        traded_at,
        base_asset,
        quote_asset,
        units_from,
        units_to,
        side_rank,
        units_e8,
        quote_e10,
        value_e10
    from ranged
)

select * from final
