-- Each asset of an account at the end of each UTC day (as_of = 23:59:59.999), from the
-- account's first active day to the end of its last active month: balance (free + locked),
-- borrowed principal, unpaid interest and net equity (balance - borrowed - interest), each
-- in the asset and valued in the reporting currency at the close of that day (or the latest
-- close before it: price_day), and how the positions are tied (statement_ties at as_of).
-- Positions come from int_positions (anchored by int_position_anchors); an account with no
-- anchor ('none') has none. The balance sheet, the roll-forward and the statement's charts
-- read this model.
-- test: unique(account, asset, day)
-- test: not_null(account, asset, day, as_of, tie_status)
-- test: accepted_values(tie_status: TIE_STATUSES)
with ledger as (
    select * from int_ledger
),

points as (
    select * from int_snapshot_points
),

anchors as (
    select * from int_position_anchors
),

positions as (
    select * from int_positions
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

activity as (
    select
        account,
        ledger_at as happened_at
    from ledger
    union all
    select
        account,
        snapshot_at as happened_at
    from points
),

days as (
    select
        account,
        cast(unnest(generate_series(
            date_trunc('day', min(happened_at)),
            date_trunc('month', max(happened_at)) + interval 1 month - interval 1 day,
            interval 1 day
        )) as date) as day
    from activity
    group by account
),

spine as (
    select
        days.account,
        anchors.asset,
        days.day,
        cast(days.day + interval 1 day - interval 1 millisecond as timestamp) as as_of,
        anchors.anchor_kind,
        anchors.baseline_balance,
        anchors.baseline_borrowed,
        anchors.baseline_interest
    from days
    inner join anchors on days.account = anchors.account
),

positioned as (
    select
        spine.*,
        case
            when
                spine.anchor_kind <> 'none'
                then coalesce(positions.balance, spine.baseline_balance)
        end
            as balance,
        case
            when spine.anchor_kind <> 'none'
                then coalesce(positions.borrowed, spine.baseline_borrowed)
        end as borrowed,
        case
            when spine.anchor_kind <> 'none'
                then coalesce(positions.interest, spine.baseline_interest)
        end as interest
    from spine
    asof left join positions
        on spine.account = positions.account
        and spine.asset = positions.asset
        and positions.position_at <= spine.as_of
),

priced as (
    select
        positioned.*,
        currencies.report_currency,
        case
            when positioned.asset = currencies.report_currency then positioned.day else
                prices.price_day
        end
            as price_day,
        case when positioned.asset = currencies.report_currency then 1 else prices.close_price end
            as close_price
    from positioned
    inner join currencies on positioned.account = currencies.account
    asof left join prices
        on positioned.account = prices.account
        and positioned.asset = prices.asset
        and prices.price_day <= positioned.day
),

tied as (
    select
        priced.*,
        ties.tie_status,
        ties.tied_to,
        ties.tie_reason
    from priced
    left join ties
        on priced.account = ties.account
        and priced.asset = ties.asset
        and (ties.span_start is null or ties.span_start < priced.as_of)
        and (ties.span_end is null or priced.as_of <= ties.span_end)
    qualify row_number() over (
        partition by priced.account, priced.asset, priced.day
        order by ties.precedence asc, ties.severity desc, ties.tie_reason asc
    ) = 1
),

final as (
    select
        account,
        asset,
        day,
        strftime(day, '%Y-%m') as month,
        as_of,
        anchor_kind,
        cast(balance as decimal(38, 18)) as balance,
        cast(borrowed as decimal(38, 18)) as borrowed,
        cast(interest as decimal(38, 18)) as interest,
        cast(balance - borrowed - interest as decimal(38, 18)) as net_equity,
        report_currency,
        price_day,
        cast(close_price as decimal(38, 18)) as close_price,
        valued(balance, close_price) as balance_value,
        valued(borrowed, close_price) as borrowed_value,
        valued(interest, close_price) as interest_value,
        valued(balance - borrowed - interest, close_price) as net_equity_value,
        coalesce(tie_status, 'unverified') as tie_status,
        tied_to,
        coalesce(tie_reason, 'no reconciliation covers this instant') as tie_reason
    from tied
)

select * from final
