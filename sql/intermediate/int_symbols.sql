-- Base and quote asset of every symbol the account traded. The lake holds no exchange info,
-- so a symbol is split at a suffix: among the splits whose quote is a known quote asset or an
-- asset of the account, prefer the one whose both sides are the account's assets, then a
-- known quote asset, then the longest quote.
-- Symbols and assets are read from the raw sources: every version of a row has the same
-- symbol and asset, and a column scan is much cheaper than the staging dedup.
-- The assets are every account's (a symbol splits the same way in each), so a build that
-- rebuilds some accounts still reads every account's rows here:
-- scope: all accounts
-- test: unique(symbol)
with trades as (
    select distinct symbol from src_trades
),

orders as (
    select distinct symbol from src_orders
),

liquidations as (
    select distinct symbol from src_liquidations
),

snapshots as (
    select distinct asset from src_account_snapshots
),

transfers as (
    select distinct asset from src_transfers
),

loans as (
    select distinct asset from src_loans
),

trade_commissions as (
    select distinct "commissionAsset" as asset from src_trades
),

known_quotes as (
    select unnest([
        'USDT', 'USDC', 'FDUSD', 'BUSD', 'TUSD', 'USDP', 'DAI', 'BTC', 'ETH', 'BNB', 'XRP', 'TRX',
        'DOGE', 'EUR', 'GBP', 'TRY', 'BRL', 'AUD', 'JPY', 'RUB', 'UAH', 'ZAR', 'PLN', 'RON', 'ARS',
        'MXN', 'COP', 'CZK', 'IDRT', 'BIDR', 'NGN', 'AEUR', 'EURI'
    ]) as quote_asset
),

symbols as (
    select symbol from trades
    union
    select symbol from orders
    union
    select symbol from liquidations
),

account_assets as (
    select asset from snapshots
    union
    select asset from transfers
    union
    select asset from loans
    union
    select asset from trade_commissions
),

candidate_quotes as (
    select quote_asset from known_quotes
    union
    select asset from account_assets
),

splits as (
    select
        symbols.symbol,
        left(symbols.symbol, length(symbols.symbol) - length(candidate_quotes.quote_asset))
            as base_asset,
        candidate_quotes.quote_asset
    from symbols
    inner join candidate_quotes
        on ends_with(symbols.symbol, candidate_quotes.quote_asset)
        and length(symbols.symbol) > length(candidate_quotes.quote_asset)
),

ranked as (
    select
        splits.*,
        (splits.base_asset in (select account_assets.asset from account_assets))::int
        + (splits.quote_asset in (select account_assets.asset from account_assets))::int
            as known_sides,
        splits.quote_asset in (select known_quotes.quote_asset from known_quotes)
            as is_known_quote
    from splits
),

final as (
    select
        symbol,
        base_asset,
        quote_asset
    from ranked
    qualify row_number() over (
        partition by symbol
        order by known_sides desc, is_known_quote desc, length(quote_asset) desc
    ) = 1
)

select * from final
