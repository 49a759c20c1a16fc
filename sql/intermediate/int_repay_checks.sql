-- Every cross-margin repay against the rule that interest is paid first (facts §6.3): its
-- interest part must be least(amount, the unpaid interest it met). The unpaid interest a repay
-- met is the position just before its instant (int_position_probes), plus the charges made at
-- that instant before it (the hour's charge comes first; a loan's ON_BORROW charge when the
-- loan came first, by txId), less what repays earlier at the same instant (by txId) paid.
-- Checked where the interest figure is verified; a row's split does not depend on rows
-- arriving later, so no late window; young PENDING interest rows in the segment excuse their
-- own amounts.
-- test: unique(account, repay_key)
-- test: accepted_values(status: RECON_STATUSES)
with repays as (
    select * from stg_repays
),

probes as (
    select * from int_position_probes
),

charges as (
    select * from int_interest_charges
),

figures as (
    select * from int_figure_coverage
),

pending as (
    select * from int_pending_rows
),

cross_repays as (
    select *
    from repays
    where status <> 'FAILED' and isolated_symbol is null
),

loans as (
    select * from stg_loans
),

charged_at_instant as (
    select
        account,
        borrowed_asset as asset,
        accrued_at,
        coalesce(sum(interest) filter (where not is_on_borrow), 0) as periodic_charged,
        coalesce(sum(interest) filter (where is_on_borrow), 0) as on_borrow_charged
    from charges
    where not is_converted
    group by all
),

loans_at_instant as (
    select
        account,
        asset,
        loaned_at,
        min(tx_id) as first_tx_id
    from loans
    where status <> 'FAILED' and isolated_symbol is null
    group by all
),

paid_before as (
    select
        repay_key,
        coalesce(
            sum(interest) over (
                partition by account, asset, repaid_at order by tx_id
                rows between unbounded preceding and 1 preceding
            ),
            0
        ) as paid_earlier
    from cross_repays
),

met as (
    select
        cross_repays.*,
        probes.interest_before,
        probes.interest_segment_start as segment_start,
        probes.segment_end,
        paid_before.paid_earlier,
        probes.interest_before + coalesce(charged_at_instant.periodic_charged, 0)
        + case
            when loans_at_instant.first_tx_id < cross_repays.tx_id
                then coalesce(charged_at_instant.on_borrow_charged, 0)
            else 0
        end
        - paid_before.paid_earlier as unpaid_interest
    from cross_repays
    inner join paid_before on cross_repays.repay_key = paid_before.repay_key
    left join probes
        on cross_repays.account = probes.account
        and cross_repays.repay_key = probes.probe_key
        and probes.probe_kind = 'repay'
    left join charged_at_instant
        on cross_repays.account = charged_at_instant.account
        and cross_repays.asset = charged_at_instant.asset
        and cross_repays.repaid_at = charged_at_instant.accrued_at
    left join loans_at_instant
        on cross_repays.account = loans_at_instant.account
        and cross_repays.asset = loans_at_instant.asset
        and cross_repays.repaid_at = loans_at_instant.loaned_at
),

expected as (
    select
        met.*,
        cast(least(met.amount, met.unpaid_interest) as decimal(38, 18)) as expected_interest,
        coalesce(
            met.repaid_at >= figures.verified_from and met.repaid_at < figures.verified_to,
            false
        ) as is_checkable
    from met
    left join figures
        on met.account = figures.account
        and met.asset = figures.asset
        and figures.figure = 'interest'
),

segment_pending as (
    select
        expected.repay_key,
        list(-pending.interest_effect order by pending.interest_effect desc)
            as pending_amounts
    from expected
    inner join pending
        on expected.account = pending.account
        and expected.asset = pending.asset
        and pending.is_young
        and pending.interest_effect <> 0
        and pending.row_key <> 'repays:' || expected.repay_key
        and pending.ledger_at > coalesce(expected.segment_start, cast('-infinity' as timestamp))
        and pending.ledger_at <= coalesce(expected.segment_end, cast('infinity' as timestamp))
    group by expected.repay_key
),

final as (
    select
        expected.repay_key,
        expected.account,
        expected.asset,
        expected.tx_id,
        expected.repay_type,
        expected.status as repay_status,
        expected.repaid_at,
        expected.amount,
        expected.interest,
        expected.principal,
        expected.unpaid_interest,
        expected.expected_interest,
        cast(expected.interest - expected.expected_interest as decimal(38, 18))
            as interest_difference,
        expected.is_checkable,
        recon_status(
            expected.interest - expected.expected_interest,
            expected.is_checkable,
            segment_pending.pending_amounts,
            false
        ) as status
    from expected
    left join segment_pending on expected.repay_key = segment_pending.repay_key
)

select * from final
