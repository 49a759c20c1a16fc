-- What each figure of each asset needs read, and from when to when it was read completely
-- (int_stream_coverage). A need is one stream over the partitions that can hold its rows
-- (the loans of X: partition X, or '' for a read of every asset at once); it is covered
-- where one of them is. The figures and what moves them:
--   principal: loans, repays (in the asset);
--   interest:  interest charges, repays;
--   balance:   transfers in and out, loans, repays, force liquidations, the fills of every
--              symbol the account trades (legs and commissions), the capital flow (fees,
--              conversions, what a repay paid in another asset: reported nowhere else), and
--              for BNB the interest charges paid in BNB.
-- has_retention: the exchange serves the stream only so far back (src_stream_retention).
-- test: unique(account, asset, figure, need)
-- test: accepted_values(figure: principal, interest, balance)
with assets as (
    select * from int_account_assets
),

coverage as (
    select * from int_stream_coverage
),

retention as (
    select * from src_stream_retention
),

traded as (
    select distinct
        coalesce(_account, account) as account,
        symbol
    from src_trades
),

ordered as (
    select distinct
        coalesce(_account, account) as account,
        symbol
    from src_orders
),

flowed as (
    select distinct
        coalesce(_account, account) as account,
        symbol
    from src_capital_flow
    where symbol is not null
),

symbols as (
    select * from traded
    union
    select * from ordered
    union
    select * from flowed
),

asset_needs as (
    select
        needs.*,
        assets.account,
        assets.asset,
        case when needs.partition_rule = 'asset' then [assets.asset, ''] else [''] end
            as partitions
    from assets
    cross join (
        values
        ('principal', 'loans', 'loans', 'asset'),
        ('principal', 'repays', 'repays', 'asset'),
        ('interest', 'interest', 'interest', 'asset'),
        ('interest', 'repays', 'repays', 'asset'),
        ('balance', 'loans', 'loans', 'asset'),
        ('balance', 'repays', 'repays', 'asset'),
        ('balance', 'liquidations', 'liquidations', 'none'),
        ('balance', 'capital_flow', 'capital_flow', 'asset')
    ) as needs (figure, stream, need, partition_rule)
),

transfer_needs as (
    select
        assets.account,
        assets.asset,
        'balance' as figure,
        'transfers' as stream,
        'transfers:' || directions.transfer_type as need,
        [directions.transfer_type] as partitions
    from assets
    cross join (values ('ROLL_IN'), ('ROLL_OUT')) as directions (transfer_type)
),

trade_needs as (
    select
        assets.account,
        assets.asset,
        'balance' as figure,
        'trades' as stream,
        'trades:' || symbols.symbol as need,
        [symbols.symbol] as partitions
    from assets
    inner join symbols on assets.account = symbols.account
),

bnb_interest_needs as (
    select
        account,
        asset,
        'balance' as figure,
        'interest' as stream,
        'interest' as need,
        ['BNB', ''] as partitions
    from assets
    where asset = 'BNB'
),

needs as (
    select
        account,
        asset,
        figure,
        stream,
        need,
        partitions
    from asset_needs
    union all
    select * from transfer_needs
    union all
    select * from trade_needs
    union all
    select * from bnb_interest_needs
),

covered as (
    select
        needs.account,
        needs.asset,
        needs.figure,
        needs.stream,
        needs.need,
        min(coverage.covered_from) as covered_from,
        max(coverage.covered_to) as covered_to
    from needs
    left join coverage
        on needs.account = coverage.account
        and needs.stream = coverage.stream
        and list_contains(needs.partitions, coverage.partition_key)
    group by all
),

final as (
    select
        covered.*,
        retention.retention_days,
        retention.retention_days is not null as has_retention
    from covered
    left join retention on covered.stream = retention.stream
)

select * from final
