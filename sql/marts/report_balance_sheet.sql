-- materialized: view
-- The balance sheet per account and month, at the month's last instant (as_of): per asset,
-- assets (balance, free + locked), liabilities (borrowed principal, unpaid interest) and net
-- equity, in the asset and valued in the reporting currency at the month-end close
-- (statement_days on the month's last day), with how each row is tied to the snapshots;
-- then one `total` line of the valued columns. An asset no close values leaves the total
-- empty (valuation_note names it).
with days as (
    select * from statement_days
),

month_ends as (
    select *
    from days
    where day = last_day(day)
),

asset_lines as (
    select
        account,
        month,
        'asset' as line,
        asset,
        as_of,
        anchor_kind,
        balance as assets,
        borrowed as principal,
        interest as unpaid_interest,
        cast(borrowed + interest as decimal(38, 18)) as liabilities,
        net_equity,
        report_currency,
        price_day,
        close_price,
        balance_value as assets_value,
        borrowed_value as principal_value,
        interest_value as unpaid_interest_value,
        cast(borrowed_value + interest_value as decimal(38, 18)) as liabilities_value,
        net_equity_value,
        case
            when anchor_kind = 'none' then 'positions unknown: no snapshot'
            when close_price is null
                then 'no close of ' || asset || report_currency || ' on or before ' || day
            when price_day < day then 'latest close before the month end: ' || price_day
        end as valuation_note,
        tie_status,
        tied_to,
        tie_reason,
        case tie_status
            when 'tied' then 0 when 'unverified' then 1 when 'provisional' then 2 else 3
        end as severity,
        anchor_kind = 'none'
        or (close_price is null and (balance <> 0 or borrowed <> 0 or interest <> 0))
            as is_unvalued
    from month_ends
),

totals as (
    select
        account,
        month,
        'total' as line,
        cast(null as varchar) as asset,
        max(as_of) as as_of,
        cast(null as varchar) as anchor_kind,
        any_value(report_currency) as report_currency,
        case when not bool_or(is_unvalued) then sum(assets_value) end as assets_value,
        case when not bool_or(is_unvalued) then sum(principal_value) end as principal_value,
        case when not bool_or(is_unvalued) then sum(unpaid_interest_value) end
            as unpaid_interest_value,
        case when not bool_or(is_unvalued) then sum(liabilities_value) end as liabilities_value,
        case when not bool_or(is_unvalued) then sum(net_equity_value) end as net_equity_value,
        case
            when bool_or(is_unvalued)
                then
                    'not valued: '
                    || string_agg(asset, ', ' order by asset) filter (where is_unvalued)
        end as valuation_note,
        max(severity) as severity,
        max(tied_to) filter (where severity = 0) as tied_to,
        coalesce(
            string_agg(asset || ' ' || tie_status || ': ' || tie_reason, '; ' order by asset)
            filter (where severity > 0),
            'every asset tied'
        ) as tie_reason
    from asset_lines
    group by account, month
),

combined as (
    select * exclude (severity, is_unvalued)
    from asset_lines
    union all by name
    select
        * exclude (severity),
        case severity
            when 0 then 'tied' when 1 then 'unverified' when 2 then 'provisional' else 'break'
        end as tie_status
    from totals
),

final as (
    select
        account,
        month,
        line,
        asset,
        as_of,
        anchor_kind,
        assets,
        principal,
        unpaid_interest,
        liabilities,
        net_equity,
        report_currency,
        price_day,
        close_price,
        assets_value,
        principal_value,
        unpaid_interest_value,
        liabilities_value,
        net_equity_value,
        valuation_note,
        tie_status,
        tied_to,
        tie_reason
    from combined
)

select * from final
