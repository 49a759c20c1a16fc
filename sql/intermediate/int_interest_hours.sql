-- Every hour the interest audit checks, and every loan's first hour: the principal charged
-- against the ledger's. Per account, borrowed asset and instant:
--   PERIODIC: every whole hour where the principal is verified and the interest history was
--             read (int_position_probes), plus every hour that has PERIODIC charges: the
--             charges' principals must add up to the principal outstanding just before the
--             hour (none charged while none is outstanding, and an hour with principal must
--             have its charge: a missing hour is 'interest_missing_hour');
--   ON_BORROW: every instant with loans or ON_BORROW charges: the charges' principals must
--             add up to the loans made then (a loan without its charge is
--             'interest_missing_on_borrow').
-- Charges paid in BNB (*_CONVERTED) count for their borrowed asset. principal_difference =
-- charged - ledger. Status: recon_status, with young PENDING principal rows in the segment
-- (or the loans themselves) excusing their own amounts; late rows can change both sides, so
-- the late window applies. ledger_principal is null where it is not verified.
-- test: unique(account, borrowed_asset, charge_kind, accrued_at)
-- test: accepted_values(charge_kind: PERIODIC, ON_BORROW)
-- test: accepted_values(status: RECON_STATUSES)
with charges as (
    select * from int_interest_charges
),

loans as (
    select * from stg_loans
),

probes as (
    select * from int_position_probes
),

figures as (
    select * from int_figure_coverage
),

pending as (
    select * from int_pending_rows
),

horizon as (
    select * from int_fetch_horizon
),

settings as (
    select * from recon_settings
),

charged as (
    select
        account,
        borrowed_asset,
        accrued_at,
        case when is_on_borrow then 'ON_BORROW' else 'PERIODIC' end as charge_kind,
        cast(sum(principal) as decimal(38, 18)) as charged_principal,
        count(*) as charges_in_hour
    from charges
    where is_audited
    group by all
),

hour_probes as (
    select
        account,
        asset as borrowed_asset,
        probe_at as accrued_at,
        'PERIODIC' as charge_kind,
        borrowed_before as ledger_principal,
        principal_segment_start as segment_start,
        segment_end
    from probes
    where probe_kind = 'hour'
),

loans_made as (
    select
        account,
        asset as borrowed_asset,
        loaned_at as accrued_at,
        'ON_BORROW' as charge_kind,
        cast(sum(principal) as decimal(38, 18)) as ledger_principal,
        list(-principal order by principal desc) filter (where status = 'PENDING')
            as pending_amounts
    from loans
    where status <> 'FAILED' and isolated_symbol is null
    group by all
),

expected as (
    select * from hour_probes
    union all by name
    select * from loans_made
),

compared as (
    select
        coalesce(expected.account, charged.account) as account,
        coalesce(expected.borrowed_asset, charged.borrowed_asset) as borrowed_asset,
        coalesce(expected.accrued_at, charged.accrued_at) as accrued_at,
        coalesce(expected.charge_kind, charged.charge_kind) as charge_kind,
        coalesce(charged.charged_principal, 0) as charged_principal,
        coalesce(charged.charges_in_hour, 0) as charges_in_hour,
        case
            when expected.charge_kind = 'ON_BORROW' then expected.ledger_principal
            when expected.account is not null then expected.ledger_principal
            when charged.charge_kind = 'ON_BORROW' then 0
        end as ledger_principal,
        expected.segment_start,
        expected.segment_end,
        expected.pending_amounts
    from expected
    full outer join charged
        on expected.account = charged.account
        and expected.borrowed_asset = charged.borrowed_asset
        and expected.accrued_at = charged.accrued_at
        and expected.charge_kind = charged.charge_kind
),

checkable as (
    select
        compared.*,
        -- PERIODIC hours are checked where probed; an ON_BORROW instant where both the loans
        -- and the charges were read
        case compared.charge_kind
            when 'PERIODIC' then compared.ledger_principal is not null
            else coalesce(
                compared.accrued_at >= principal_figures.verified_from
                and compared.accrued_at < principal_figures.verified_to
                and compared.accrued_at >= interest_figures.covered_from
                and compared.accrued_at < interest_figures.covered_to,
                false
            )
        end as is_checkable
    from compared
    left join figures as principal_figures
        on compared.account = principal_figures.account
        and compared.borrowed_asset = principal_figures.asset
        and principal_figures.figure = 'principal'
    left join figures as interest_figures
        on compared.account = interest_figures.account
        and compared.borrowed_asset = interest_figures.asset
        and interest_figures.figure = 'interest'
),

hour_pending as (
    select
        checkable.account,
        checkable.borrowed_asset,
        checkable.accrued_at,
        checkable.charge_kind,
        list(-pending.principal_effect order by pending.principal_effect desc)
            as pending_amounts
    from checkable
    inner join pending
        on checkable.account = pending.account
        and checkable.borrowed_asset = pending.asset
        and pending.is_young
        and pending.principal_effect <> 0
        -- a pending row shifts the position where it lies between the snapshots around it
        and pending.ledger_at > coalesce(checkable.segment_start, cast('-infinity' as timestamp))
        and pending.ledger_at <= coalesce(checkable.segment_end, cast('infinity' as timestamp))
    where checkable.charge_kind = 'PERIODIC'
    group by all
),

final as (
    select
        checkable.account,
        checkable.borrowed_asset,
        checkable.accrued_at,
        checkable.charge_kind,
        checkable.charged_principal,
        checkable.charges_in_hour,
        checkable.ledger_principal,
        cast(checkable.charged_principal - checkable.ledger_principal as decimal(38, 18))
            as principal_difference,
        checkable.segment_start,
        checkable.segment_end,
        checkable.is_checkable,
        case
            when checkable.charges_in_hour = 0 and checkable.charge_kind = 'PERIODIC'
                then 'interest_missing_hour'
            when checkable.charges_in_hour = 0 then 'interest_missing_on_borrow'
            else 'interest_principal'
        end as break_kind,
        checkable.accrued_at
        > horizon.newest_fetched_at - to_hours(settings.late_window_hours)
            as is_within_late_window,
        recon_status(
            checkable.charged_principal - checkable.ledger_principal,
            checkable.is_checkable,
            coalesce(checkable.pending_amounts, hour_pending.pending_amounts),
            checkable.accrued_at
            > horizon.newest_fetched_at - to_hours(settings.late_window_hours)
        ) as status
    from checkable
    left join hour_pending
        on checkable.account = hour_pending.account
        and checkable.borrowed_asset = hour_pending.borrowed_asset
        and checkable.accrued_at = hour_pending.accrued_at
        and checkable.charge_kind = hour_pending.charge_kind
    left join horizon on checkable.account = horizon.account
    cross join settings
)

select * from final
