-- Where each account's running positions (balance, borrowed, interest) are pinned, per asset
-- and figure (int_figure_coverage): at zero before the first ledger line where the figure is
-- anchored at the opening, else at its anchor snapshot (the first snapshot of the span it is
-- verified in; the account's first snapshot where nothing anchors it, so reports still show
-- a position, unverified). The baseline is the value before any ledger line: the anchor value
-- minus the ledger's running sum up to the anchor (int_anchor_points), so
-- position(t) = baseline + running sum to t. anchor_kind and anchor_at are the balance's.
-- test: unique(account, asset)
with figures as (
    select * from int_figure_coverage
),

anchor_points as (
    select * from int_anchor_points
),

account_assets as (
    select * from int_account_assets
),

first_points as (
    select *
    from anchor_points
    qualify row_number() over (partition by account, asset order by anchor_at) = 1
),

pinned as (
    select
        figures.account,
        figures.asset,
        figures.figure,
        figures.anchor_kind,
        coalesce(figures.anchor_at, first_points.anchor_at) as pinned_at
    from figures
    left join first_points
        on figures.account = first_points.account
        and figures.asset = first_points.asset
),

baselines as (
    select
        pinned.account,
        pinned.asset,
        pinned.figure,
        pinned.anchor_kind,
        case when pinned.anchor_kind <> 'opening' then pinned.pinned_at end as anchor_at,
        case
            when pinned.anchor_kind = 'opening' then 0
            when pinned.figure = 'balance'
                then anchor_points.balance - anchor_points.cumulative_balance
            when pinned.figure = 'principal'
                then anchor_points.borrowed - anchor_points.cumulative_principal
            else anchor_points.interest - anchor_points.cumulative_interest
        end as baseline
    from pinned
    left join anchor_points
        on pinned.account = anchor_points.account
        and pinned.asset = anchor_points.asset
        and pinned.pinned_at = anchor_points.anchor_at
),

final as (
    select
        account_assets.account,
        account_assets.asset,
        coalesce(balance.anchor_kind, 'none') as anchor_kind,
        balance.anchor_at,
        cast(balance.baseline as decimal(38, 18)) as baseline_balance,
        cast(principal.baseline as decimal(38, 18)) as baseline_borrowed,
        cast(interest.baseline as decimal(38, 18)) as baseline_interest,
        coalesce(principal.anchor_kind, 'none') as principal_anchor_kind,
        principal.anchor_at as principal_anchor_at,
        coalesce(interest.anchor_kind, 'none') as interest_anchor_kind,
        interest.anchor_at as interest_anchor_at
    from account_assets
    left join baselines as balance
        on account_assets.account = balance.account
        and account_assets.asset = balance.asset
        and balance.figure = 'balance'
    left join baselines as principal
        on account_assets.account = principal.account
        and account_assets.asset = principal.asset
        and principal.figure = 'principal'
    left join baselines as interest
        on account_assets.account = interest.account
        and account_assets.asset = interest.asset
        and interest.figure = 'interest'
)

select * from final
