-- materialized: view
-- Interest expense per account, asset and UTC day: the charges and what repays paid of
-- interest that day. Charges paid at once in BNB (*_CONVERTED) show under BNB.
-- Then (columns added later): the daily rates the asset's own charges applied, the values in
-- the reporting currency at that day's close (statement_prices, or the latest before), and
-- the worst tie of the day (statement_ties over the day's spans, and the interest audit's
-- charge breaks that day).
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

prices as (
    select * from statement_prices
),

currencies as (
    select * from statement_currencies
),

ties as (
    select * from statement_ties
),

breaks as (
    select * from recon_breaks
),

rates as (
    select
        account,
        cast(accrued_at as date) as day,
        asset,
        min(interest_rate) as daily_rate_min,
        max(interest_rate) as daily_rate_max
    from interest
    where isolated_symbol is null and interest_type not like '%_CONVERTED'
    group by all
),

charge_breaks as (
    select
        account,
        cast(interval_end as date) as day,
        asset,
        max(case status when 'break' then 3 else 2 end) as severity,
        count(*) || ' charge(s) '
        || string_agg(distinct status, '/' order by status) || ': '
        || string_agg(distinct kind, ', ' order by kind) as reason
    from breaks
    where kind in ('interest_charge', 'interest_principal')
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

expense as (
    select
        coalesce(charged.account, repaid.account) as account,
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
),

priced as (
    select
        expense.*,
        currencies.report_currency,
        case
            when expense.asset = currencies.report_currency then expense.day else prices.price_day
        end
            as price_day,
        case when expense.asset = currencies.report_currency then 1 else prices.close_price end
            as close_price
    from expense
    inner join currencies on expense.account = currencies.account
    asof left join prices
        on expense.account = prices.account
        and expense.asset = prices.asset
        and prices.price_day <= expense.day
),

day_ties as (
    select
        priced.account,
        priced.day,
        priced.asset,
        max(ties.severity) as severity,
        max(ties.tied_to) filter (where ties.severity = 0) as tied_to,
        string_agg(distinct ties.tie_reason, '; ' order by ties.tie_reason) filter (
            where ties.severity > 0
        ) as reasons
    from priced
    inner join ties
        on priced.account = ties.account
        and priced.asset = ties.asset
        and (ties.span_start is null or ties.span_start < priced.day + interval 1 day)
        and (ties.span_end is null or priced.day <= ties.span_end)
    group by all
),

final as (
    select
        priced.account,
        strftime(priced.day, '%Y-%m') as month,
        priced.day,
        priced.asset,
        priced.charges,
        priced.interest_charged,
        priced.interest_repaid,
        rates.daily_rate_min,
        rates.daily_rate_max,
        priced.report_currency,
        priced.price_day,
        cast(priced.close_price as decimal(38, 18)) as close_price,
        valued(priced.interest_charged, priced.close_price) as interest_charged_value,
        valued(priced.interest_repaid, priced.close_price) as interest_repaid_value,
        case greatest(coalesce(day_ties.severity, 1), coalesce(charge_breaks.severity, 0))
            when 0 then 'tied' when 1 then 'unverified' when 2 then 'provisional' else 'break'
        end as tie_status,
        day_ties.tied_to,
        coalesce(nullif(concat_ws('; ', charge_breaks.reason, day_ties.reasons), ''), 'matched')
            as tie_reason
    from priced
    left join rates
        on priced.account = rates.account
        and priced.day = rates.day
        and priced.asset = rates.asset
    left join day_ties
        on priced.account = day_ties.account
        and priced.day = day_ties.day
        and priced.asset = day_ties.asset
    left join charge_breaks
        on priced.account = charge_breaks.account
        and priced.day = charge_breaks.day
        and priced.asset = charge_breaks.asset
)

select * from final
