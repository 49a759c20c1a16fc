-- materialized: view
-- Interest expense per account, asset and UTC day: the charges and what repays paid of
-- interest that day. Charges paid at once in BNB (*_CONVERTED) show under BNB.
with interest as (
    select * from stg_interest
),

repays as (
    select * from stg_repays
),

charged as (
    select
        account,
        cast(accrued_at as date) as day,
        asset,
        count(*) as charges,
        sum(interest) as interest_charged
    from interest
    where isolated_symbol is null
    group by all
),

repaid as (
    select
        account,
        cast(repaid_at as date) as day,
        asset,
        sum(interest) as interest_repaid
    from repays
    where status = 'CONFIRMED' and isolated_symbol is null
    group by all
),

final as (
    select
        coalesce(charged.account, repaid.account) as account,
        strftime(coalesce(charged.day, repaid.day), '%Y-%m') as month,
        coalesce(charged.day, repaid.day) as day,
        coalesce(charged.asset, repaid.asset) as asset,
        coalesce(charged.charges, 0) as charges,
        cast(coalesce(charged.interest_charged, 0) as decimal(38, 18)) as interest_charged,
        cast(coalesce(repaid.interest_repaid, 0) as decimal(38, 18)) as interest_repaid
    from charged
    full outer join repaid
        on charged.account = repaid.account
        and charged.day = repaid.day
        and charged.asset = repaid.asset
)

select * from final
