-- materialized: view
-- The loan roll-forward per account, month and asset that owed anything in the month.
-- Principal: principal_opening + borrowed + repaid_principal = principal_closing.
-- Interest: interest_opening + interest_accrued + the four paid_* terms = interest_closing,
-- the payments split by how the repay was paid (int_repay_methods): in the asset itself,
-- with BNB (BNB_AUTO_REPAY), by a force liquidation, or with points (POINT_AUTO_REPAY).
-- Terms are signed contributions (repayments negative). Charges of this asset paid at once
-- in BNB (*_CONVERTED) never become unpaid interest: they are shown beside, in BNB.
-- Opening and closing are the positions at the previous and this month's last instant
-- (statement_days); tie_status is the worst tie of the spans the month crosses
-- (statement_ties), tied_to the snapshot the closing figures are tied to.
with ledger as (
    select * from int_ledger
),

methods as (
    select * from int_repay_methods
),

interest as (
    select * from stg_interest
),

days as (
    select * from statement_days
),

anchors as (
    select * from int_position_anchors
),

ties as (
    select * from statement_ties
),

month_ends as (
    select
        *,
        cast(date_trunc('month', day) as timestamp) as month_start
    from days
    where day = last_day(day)
),

with_opening as (
    select
        month_ends.*,
        month_ends.month_start - interval 1 millisecond as opening_at,
        month_ends.borrowed as principal_closing,
        month_ends.interest as interest_closing,
        case
            when month_ends.anchor_kind <> 'none'
                then coalesce(
                    lag(month_ends.borrowed) over by_month, anchors.baseline_borrowed
                )
        end as principal_opening,
        case
            when month_ends.anchor_kind <> 'none'
                then coalesce(
                    lag(month_ends.interest) over by_month, anchors.baseline_interest
                )
        end as interest_opening
    from month_ends
    inner join anchors
        on month_ends.account = anchors.account
        and month_ends.asset = anchors.asset
    window by_month as (partition by month_ends.account, month_ends.asset order by month_ends.day)
),

debt_lines as (
    select
        ledger.*,
        strftime(ledger.ledger_at, '%Y-%m') as month,
        methods.paid_with
    from ledger
    left join methods
        on ledger.account = methods.account
        and regexp_replace(ledger.entry_key, ':(principal|interest)$', '')
        = 'repays:' || methods.repay_key
    where ledger.principal_effect <> 0 or ledger.interest_effect <> 0
),

movements as (
    select
        account,
        month,
        asset,
        sum(principal_effect) filter (where entry_type = 'BORROW') as borrowed,
        sum(principal_effect) filter (where entry_type = 'REPAY_PRINCIPAL') as repaid_principal,
        sum(interest_effect) filter (where entry_type = 'INTEREST') as interest_accrued,
        sum(interest_effect) filter (where paid_with = 'asset') as interest_paid_in_asset,
        sum(interest_effect) filter (where paid_with = 'bnb') as interest_paid_with_bnb,
        sum(interest_effect) filter (where paid_with = 'liquidation')
            as interest_paid_by_liquidation,
        sum(interest_effect) filter (where paid_with = 'points') as interest_paid_with_points,
        count(*) filter (where status = 'PENDING') as pending_rows
    from debt_lines
    group by all
),

converted as (
    select
        account,
        strftime(accrued_at, '%Y-%m') as month,
        raw_asset as asset,
        count(*) as converted_charges,
        sum(interest) as interest_converted_bnb
    from interest
    where interest_type like '%_CONVERTED' and isolated_symbol is null
    group by all
),

opening_ties as (
    select
        with_opening.account,
        with_opening.asset,
        with_opening.month,
        ties.tie_status as opening_tie_status,
        ties.tied_to as opening_tied_to
    from with_opening
    inner join ties
        on with_opening.account = ties.account
        and with_opening.asset = ties.asset
        and (ties.span_start is null or ties.span_start < with_opening.opening_at)
        and (ties.span_end is null or with_opening.opening_at <= ties.span_end)
    qualify row_number() over (
        partition by with_opening.account, with_opening.asset, with_opening.month
        order by ties.precedence asc, ties.severity desc, ties.tie_reason asc
    ) = 1
),

month_ties as (
    select
        with_opening.account,
        with_opening.asset,
        with_opening.month,
        max(ties.severity) as severity,
        string_agg(distinct ties.tie_reason, '; ' order by ties.tie_reason) filter (
            where ties.severity > 0
        ) as reasons
    from with_opening
    inner join ties
        on with_opening.account = ties.account
        and with_opening.asset = ties.asset
        and (ties.span_start is null or ties.span_start < with_opening.as_of)
        and (ties.span_end is null or with_opening.opening_at < ties.span_end)
    group by all
),

joined as (
    select
        with_opening.*,
        coalesce(movements.borrowed, 0) as month_borrowed,
        coalesce(movements.repaid_principal, 0) as month_repaid_principal,
        coalesce(movements.interest_accrued, 0) as month_interest_accrued,
        coalesce(movements.interest_paid_in_asset, 0) as month_interest_paid_in_asset,
        coalesce(movements.interest_paid_with_bnb, 0) as month_interest_paid_with_bnb,
        coalesce(movements.interest_paid_by_liquidation, 0) as month_interest_paid_by_liquidation,
        coalesce(movements.interest_paid_with_points, 0) as month_interest_paid_with_points,
        coalesce(movements.pending_rows, 0) as pending_rows,
        coalesce(converted.interest_converted_bnb, 0) as interest_converted_bnb,
        coalesce(converted.converted_charges, 0) as converted_charges,
        opening_ties.opening_tie_status,
        opening_ties.opening_tied_to,
        greatest(
            coalesce(month_ties.severity, 0),
            case with_opening.tie_status
                when 'tied' then 0 when 'unverified' then 1 when 'provisional' then 2 else 3
            end
        ) as severity,
        month_ties.reasons
    from with_opening
    left join movements
        on with_opening.account = movements.account
        and with_opening.month = movements.month
        and with_opening.asset = movements.asset
    left join converted
        on with_opening.account = converted.account
        and with_opening.month = converted.month
        and with_opening.asset = converted.asset
    left join opening_ties
        on with_opening.account = opening_ties.account
        and with_opening.asset = opening_ties.asset
        and with_opening.month = opening_ties.month
    left join month_ties
        on with_opening.account = month_ties.account
        and with_opening.asset = month_ties.asset
        and with_opening.month = month_ties.month
),

final as (
    select
        account,
        month,
        asset,
        cast(principal_opening as decimal(38, 18)) as principal_opening,
        cast(month_borrowed as decimal(38, 18)) as borrowed,
        cast(month_repaid_principal as decimal(38, 18)) as repaid_principal,
        principal_closing,
        cast(interest_opening as decimal(38, 18)) as interest_opening,
        cast(month_interest_accrued as decimal(38, 18)) as interest_accrued,
        cast(month_interest_paid_in_asset as decimal(38, 18)) as interest_paid_in_asset,
        cast(month_interest_paid_with_bnb as decimal(38, 18)) as interest_paid_with_bnb,
        cast(month_interest_paid_by_liquidation as decimal(38, 18)) as interest_paid_by_liquidation,
        cast(month_interest_paid_with_points as decimal(38, 18)) as interest_paid_with_points,
        interest_closing,
        cast(interest_converted_bnb as decimal(38, 18)) as interest_converted_bnb,
        converted_charges,
        pending_rows,
        report_currency,
        price_day,
        close_price,
        borrowed_value as principal_closing_value,
        interest_value as interest_closing_value,
        coalesce(opening_tie_status, 'unverified') as opening_tie_status,
        opening_tied_to,
        case severity
            when 0 then 'tied' when 1 then 'unverified' when 2 then 'provisional' else 'break'
        end as tie_status,
        tied_to,
        case when severity = 0 then tie_reason else coalesce(reasons, tie_reason) end
            as tie_reason
    from joined
    where
        principal_opening <> 0 or principal_closing <> 0 or month_borrowed <> 0
        or interest_opening <> 0 or interest_closing <> 0 or month_interest_accrued <> 0
        or interest_converted_bnb <> 0
)

select * from final
