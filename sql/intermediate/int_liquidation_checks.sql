-- Every cross-margin force liquidation against its fills: the qty of its myTrades rows (same
-- symbol and orderId) must add up to its executedQty. A liquidation with no fills at all is
-- booked from its own row (int_ledger_liquidations) and is a break only where the symbol's
-- fills were read (else unverified). Fills may arrive late: the late window applies.
-- test: unique(account, liquidation_key)
-- test: accepted_values(status: RECON_STATUSES)
with liquidations as (
    select * from stg_liquidations
),

trades as (
    select * from stg_trades
),

coverage as (
    select * from int_stream_coverage
),

horizon as (
    select * from int_fetch_horizon
),

settings as (
    select * from recon_settings
),

-- the fills of the liquidations' orders only: a few among millions of trades
fills as (
    select
        trades.account,
        trades.symbol,
        trades.order_id,
        count(*) as fill_count,
        cast(sum(trades.qty) as decimal(38, 18)) as filled_qty
    from trades
    semi join liquidations
        on trades.account = liquidations.account
        and trades.symbol = liquidations.symbol
        and trades.order_id = liquidations.order_id
    group by all
),

compared as (
    select
        liquidations.*,
        coalesce(fills.fill_count, 0) as fill_count,
        coalesce(fills.filled_qty, 0) as filled_qty,
        coalesce(
            liquidations.liquidated_at >= coverage.covered_from
            and liquidations.liquidated_at < coverage.covered_to,
            false
        ) as is_checkable
    from liquidations
    left join fills
        on liquidations.account = fills.account
        and liquidations.symbol = fills.symbol
        and liquidations.order_id = fills.order_id
    left join coverage
        on liquidations.account = coverage.account
        and coverage.stream = 'trades'
        and liquidations.symbol = coverage.partition_key
    where not coalesce(liquidations.is_isolated, false)
),

final as (
    select
        compared.liquidation_key,
        compared.account,
        compared.symbol,
        compared.order_id,
        compared.side,
        compared.liquidated_at,
        compared.executed_qty,
        compared.filled_qty,
        compared.fill_count,
        cast(compared.filled_qty - compared.executed_qty as decimal(38, 18)) as qty_difference,
        compared.is_checkable,
        recon_status(
            compared.filled_qty - compared.executed_qty,
            compared.is_checkable,
            null,
            compared.liquidated_at
            > horizon.newest_fetched_at - to_hours(settings.late_window_hours)
        ) as status
    from compared
    left join horizon on compared.account = horizon.account
    cross join settings
)

select * from final
