-- The reporting currency of each account: the quote asset its daily closes were fetched in
-- (the exporter reads each asset's pair against the account's `report_currency`, so the
-- price symbols are <asset><currency>). An account with no closes is reported in USDT, the
-- configuration's default.
-- test: unique(account)
-- test: not_null(account, report_currency)
with prices as (
    select * from stg_prices
),

ledger as (
    select * from int_ledger
),

snapshots as (
    select * from stg_account_snapshots
),

accounts as (
    select distinct account from ledger
    union
    select distinct account from snapshots
    union
    select distinct account from prices
),

account_assets as (
    select distinct
        account,
        asset
    from ledger
    where asset is not null
    union
    select distinct
        account,
        asset
    from snapshots
),

price_symbols as (
    select distinct
        account,
        symbol
    from prices
),

quotes as (
    select
        price_symbols.account,
        substr(price_symbols.symbol, length(account_assets.asset) + 1) as quote_asset,
        count(distinct price_symbols.symbol) as symbols
    from price_symbols
    inner join account_assets
        on price_symbols.account = account_assets.account
        and starts_with(price_symbols.symbol, account_assets.asset)
        and length(price_symbols.symbol) > length(account_assets.asset)
    group by all
),

chosen as (
    select *
    from quotes
    qualify row_number() over (
        partition by account order by symbols desc, length(quote_asset) asc, quote_asset
    ) = 1
),

final as (
    select
        accounts.account,
        coalesce(chosen.quote_asset, 'USDT') as report_currency,
        chosen.quote_asset is not null as is_from_prices
    from accounts
    left join chosen on accounts.account = chosen.account
)

select * from final
