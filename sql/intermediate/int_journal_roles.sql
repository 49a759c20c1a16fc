-- The accounts the journal (report_journal) books into, by role: the three the ledger's
-- effects post to, each entry type's contra role (entry types with none post to `suspense`),
-- with their account in the chart of accounts (table chart_of_accounts, by role). Tested here,
-- on a dozen rows, that every role has an account: not on the journal's millions of lines.
-- test: unique(entry_type, role)
-- test: not_null(role, account_code, account_name, account_type)
with chart as (
    select * from chart_of_accounts
),

contra_roles as (
    -- DuckDB names a values list's columns col0, col1
    select
        col0 as entry_type,
        col1 as role
    from (
        values
        ('TRANSFER_IN', 'spot_wallet'),
        ('TRANSFER_OUT', 'spot_wallet'),
        ('BORROW', 'repaid_otherwise'),
        ('REPAY_PRINCIPAL', 'repaid_otherwise'),
        ('REPAY_INTEREST', 'repaid_otherwise'),
        ('INTEREST', 'interest_expense'),
        ('INTEREST_CONVERTED', 'interest_expense'),
        ('TRADE_BASE', 'trading'),
        ('TRADE_QUOTE', 'trading'),
        ('COMMISSION', 'trading_fees'),
        ('LIQUIDATION_BASE', 'liquidation_trading'),
        ('LIQUIDATION_QUOTE', 'liquidation_trading')
    )
),

roles as (
    -- entry_type null: the role every entry type posts to (the effect's own account), or
    -- the contra role of entry types not listed above
    select
        null as entry_type,
        col0 as role
    from (values ('margin_balance'), ('loans_payable'), ('interest_payable'), ('suspense'))
    union all
    select
        entry_type,
        role
    from contra_roles
),

final as (
    select
        roles.entry_type,
        roles.role,
        chart.account_code,
        chart.account_name,
        chart.account_type
    from roles
    left join chart on roles.role = chart.role
)

select * from final
