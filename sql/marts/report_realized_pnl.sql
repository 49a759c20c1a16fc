-- materialized: view
-- Realized profit and loss per closing fill, per account and month: the FIFO lots it closed
-- (statement_lot_matches), their cost and its proceeds (commissions included) in the quote
-- asset and in the reporting currency. realized_pnl_quote is empty when a lot was opened in
-- another quote asset. lot_method states the method on every row; the tie columns say how
-- the closing fill's base-asset movement is tied to the snapshots.
with matches as (
    select * from statement_lot_matches
),

trades as (
    select * from stg_trades
),

symbols as (
    select * from int_symbols
),

liquidations as (
    select * from stg_liquidations
),

currencies as (
    select * from statement_currencies
),

ties as (
    select * from statement_ties
),

closings as (
    select
        account,
        closing_trade_key,
        count(*) as lots,
        min(opened_at) as first_lot_opened_at,
        sum(matched_qty) as closed_qty,
        sum(proceeds_quote) as proceeds_quote,
        sum(cost_quote) as cost_quote,
        bool_and(is_same_quote) as is_same_quote,
        sum(proceeds_value) as proceeds_value,
        sum(cost_value) as cost_value
    from matches
    group by all
),

closing_fills as (
    select
        closings.*,
        trades.traded_at,
        trades.symbol,
        trades.trade_id,
        trades.order_id,
        trades.side,
        symbols.base_asset,
        symbols.quote_asset,
        currencies.report_currency,
        liquidations.order_id is not null as is_liquidation
    from closings
    inner join trades
        on closings.account = trades.account
        and closings.closing_trade_key = trades.trade_key
    inner join symbols on trades.symbol = symbols.symbol
    inner join currencies on closings.account = currencies.account
    left join liquidations
        on trades.account = liquidations.account
        and trades.symbol = liquidations.symbol
        and trades.order_id = liquidations.order_id
),

tied as (
    select
        closing_fills.*,
        ties.tie_status,
        ties.tied_to,
        ties.tie_reason
    from closing_fills
    left join ties
        on closing_fills.account = ties.account
        and closing_fills.base_asset = ties.asset
        and (ties.span_start is null or ties.span_start < closing_fills.traded_at)
        and (ties.span_end is null or closing_fills.traded_at <= ties.span_end)
    qualify row_number() over (
        partition by closing_fills.account, closing_fills.closing_trade_key
        order by ties.precedence asc, ties.severity desc, ties.tie_reason asc
    ) = 1
),

final as (
    select
        account,
        strftime(traded_at, '%Y-%m') as month,
        traded_at as trade_time,
        symbol,
        base_asset,
        quote_asset,
        trade_id,
        order_id,
        side,
        is_liquidation,
        cast(closed_qty as decimal(38, 18)) as closed_qty,
        lots,
        first_lot_opened_at,
        cast(proceeds_quote as decimal(38, 18)) as proceeds_quote,
        cast(cost_quote as decimal(38, 18)) as cost_quote,
        cast(case when is_same_quote then proceeds_quote - cost_quote end as decimal(38, 18))
            as realized_pnl_quote,
        report_currency,
        cast(proceeds_value as decimal(38, 18)) as proceeds_value,
        cast(cost_value as decimal(38, 18)) as cost_value,
        cast(proceeds_value - cost_value as decimal(38, 18)) as realized_pnl_value,
        'FIFO' as lot_method,
        coalesce(tie_status, 'unverified') as tie_status,
        tied_to,
        coalesce(tie_reason, 'no reconciliation covers this instant') as tie_reason
    from tied
)

select * from final
