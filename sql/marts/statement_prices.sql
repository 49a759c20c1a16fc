-- Daily closes of each asset of an account in its reporting currency (statement_currencies):
-- the close of <asset><currency> on each day; the currency itself is worth 1 and has no rows.
-- Valuations take the close of their day, or the latest close before it (price_day says
-- which day's close was used).
-- test: unique(account, asset, price_day)
with prices as (
    select * from stg_prices
),

currencies as (
    select * from statement_currencies
),

final as (
    select
        prices.account,
        left(prices.symbol, length(prices.symbol) - length(currencies.report_currency)) as asset,
        currencies.report_currency,
        prices.symbol,
        prices.price_day,
        prices.closed_at,
        prices.close_price
    from prices
    inner join currencies
        on prices.account = currencies.account
        and ends_with(prices.symbol, currencies.report_currency)
        and length(prices.symbol) > length(currencies.report_currency)
)

select * from final
