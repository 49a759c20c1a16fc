-- materialized: view
-- The double-entry journal per account and month: every ledger line (int_ledger) as
-- balanced journal lines in the chart of accounts (table chart_of_accounts, by role; names
-- and codes may hold {asset}). A line's effects become lines of their own accounts: its
-- balance effect on `margin_balance` (an asset: debit when it grows), its principal and
-- interest effects on `loans_payable` and `interest_payable` (liabilities: credit when they
-- grow); a contra line takes what is left, -(balance - principal - interest), in the account
-- its entry type names (transfers: `spot_wallet`, interest: `interest_expense`, fills:
-- `trading` or `liquidation_trading`, fees: `trading_fees`, a repay not paid from the
-- balance: `repaid_otherwise`). So debits equal credits for every ledger line, in the asset
-- and in the reporting currency (each line of one asset valued at the same close: its day's,
-- or the latest before), hence for every entry (journal_no: the ledger lines of one source
-- row, e.g. a fill's base, quote and fee) and every month. Zero lines are left out.
-- Layout: QuickBooks Online's journal import (Journal No, Journal Date, Account Name as
-- Parent:Sub, Debits, Credits, Description) with debit_value / credit_value as its amounts.
-- (its accounts are tested in int_journal_roles: every role has one in the chart)
with ledger as (
    select * from int_ledger
),

chart as (
    select * from chart_of_accounts
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

contra_roles as (
    select * from int_journal_roles
    where entry_type is not null
),

entries as (
    select
        ledger.*,
        regexp_replace(ledger.entry_key, ':(base|quote|commission|principal|interest)$', '')
            as journal_no,
        coalesce(contra_roles.role, 'suspense') as contra_role
    from ledger
    left join contra_roles on ledger.entry_type = contra_roles.entry_type
    where ledger.asset is not null
),

-- debit-positive amounts: an asset's growth is a debit, a liability's growth a credit
lines as (
    select
        entries.*,
        unnest([
            { 'role': 'margin_balance', 'amount': entries.balance_effect, 'position': 1 },
            { 'role': 'loans_payable', 'amount': -entries.principal_effect, 'position': 2 },
            { 'role': 'interest_payable', 'amount': -entries.interest_effect, 'position': 3 },
            {
                'role': entries.contra_role,
                'amount': -(
                    entries.balance_effect - entries.principal_effect - entries.interest_effect
                ),
                'position': 4
            }
        ]) as posting
    from entries
),

priced as (
    select
        lines.*,
        currencies.report_currency,
        case
            when lines.asset = currencies.report_currency then cast(lines.ledger_at as date) else
                prices.price_day
        end
            as price_day,
        case when lines.asset = currencies.report_currency then 1 else prices.close_price end
            as close_price
    from lines
    inner join currencies on lines.account = currencies.account
    asof left join prices
        on lines.account = prices.account
        and lines.asset = prices.asset
        and prices.price_day <= cast(lines.ledger_at as date)
    where lines.posting.amount <> 0
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
        and (ties.span_start is null or ties.span_start < priced.ledger_at)
        and (ties.span_end is null or priced.ledger_at <= ties.span_end)
    qualify row_number() over (
        partition by priced.account, priced.entry_key, priced.posting.position
        order by ties.precedence asc, ties.severity desc, ties.tie_reason asc
    ) = 1
),

final as (
    select
        tied.account,
        strftime(tied.ledger_at, '%Y-%m') as month,
        tied.journal_no,
        cast(tied.ledger_at as date) as journal_date,
        tied.ledger_at as entry_time,
        row_number() over (
            partition by tied.account, tied.journal_no
            order by tied.entry_key, tied.posting.position
        ) as line,
        replace(chart.account_code, '{asset}', tied.asset) as account_code,
        replace(chart.account_name, '{asset}', tied.asset) as account_name,
        chart.account_type,
        tied.posting.role as account_role,
        tied.asset,
        cast(case when tied.posting.amount > 0 then tied.posting.amount end as decimal(38, 18))
            as debit,
        cast(case when tied.posting.amount < 0 then -tied.posting.amount end as decimal(38, 18))
            as credit,
        tied.report_currency,
        tied.price_day,
        cast(tied.close_price as decimal(38, 18)) as close_price,
        valued(case when tied.posting.amount > 0 then tied.posting.amount end, tied.close_price)
            as debit_value,
        valued(case when tied.posting.amount < 0 then -tied.posting.amount end, tied.close_price)
            as credit_value,
        concat_ws(
            ' ',
            lower(replace(tied.entry_type, '_', ' ')),
            tied.side,
            tied.symbol,
            'tx ' || tied.tx_id,
            'order ' || tied.order_id,
            'trade ' || tied.trade_id
        ) as description,
        tied.entry_type,
        tied.status,
        tied.entry_key,
        coalesce(tied.tie_status, 'unverified') as tie_status,
        tied.tied_to,
        coalesce(tied.tie_reason, 'no reconciliation covers this instant') as tie_reason
    from tied
    left join chart on tied.posting.role = chart.role
)

select * from final
