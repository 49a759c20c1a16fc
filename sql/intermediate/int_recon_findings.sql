-- Every check that does not match, in one shape (a symptom; recon_breaks adds its cause):
--   principal, interest, balance   an interval (t1, t2] whose figure does not add up;
--   interest_principal             an hour's (or a loan's first hour's) charges computed on
--                                  another principal than the ledger's;
--   interest_missing_hour          an hour with principal outstanding and no charge;
--   interest_missing_on_borrow     a loan without its ON_BORROW charge;
--   interest_charge                a charge <> ceil8(principal x rate / 24);
--   interest_rate                  a charge's rate <> the published rate of its hour;
--   repay_split                    a repay that did not pay the unpaid interest first;
--   liquidation_fills              a force liquidation whose fills <> its executedQty;
--   capital_flow                   a capital-flow row and the typed history disagree;
--   pending                        a row still PENDING (provisional: it may still fail);
--   pending_stale                  one still PENDING past recon_settings.pending_max_age_hours.
-- status: 'break' or 'provisional'. A finding about one row (is_primary) happened at
-- `happened_at` and can be a root cause; the others are consequences that a row in
-- (region_start, region_end] of one of `assets` can explain (int_break_causes).
-- `terms` lists what the expected side is made of; `detail` names both sides.
-- test: unique(break_id)
-- test: not_null(break_id, account, kind, status)
-- test: accepted_values(kind: BREAK_KINDS)
-- test: accepted_values(status: break, provisional)
with principal as (
    select * from recon_principal
),

interest as (
    select * from recon_interest
),

balances as (
    select * from recon_balances
),

audit as (
    select * from interest_audit
),

hours as (
    select * from int_interest_hours
),

repays as (
    select * from int_repay_checks
),

probes as (
    select * from int_position_probes
),

liquidations as (
    select * from int_liquidation_checks
),

flows as (
    select * from int_capital_flow_matches
),

pending as (
    select * from int_pending_rows
),

symbols as (
    select * from int_symbols
),

settings as (
    select * from recon_settings
),

interval_rows as (
    select
        'principal' as kind,
        borrowed_start as value_start,
        borrowed_end as value_end,
        concat_ws(
            '; ',
            term('loans_principal', loans_principal),
            term('repaid_principal', repaid_principal)
        ) as terms,
        *
    from principal
    union all by name
    select
        'interest' as kind,
        interest_start as value_start,
        interest_end as value_end,
        concat_ws(
            '; ',
            term('interest_charged', interest_charged),
            term('interest_repaid', interest_repaid)
        ) as terms,
        *
    from interest
    union all by name
    select
        'balance' as kind,
        balance_start as value_start,
        balance_end as value_end,
        concat_ws(
            '; ',
            nonzero_term('transfers_in', transfers_in),
            nonzero_term('transfers_out', transfers_out),
            nonzero_term('borrowed', borrowed),
            nonzero_term('repaid_principal', repaid_principal),
            nonzero_term('repaid_interest', repaid_interest),
            nonzero_term('trades', trades),
            nonzero_term('commissions', commissions),
            nonzero_term('liquidations', liquidations),
            nonzero_term('interest_converted', interest_converted),
            nonzero_term('liquidation_fees', liquidation_fees),
            nonzero_term('conversions', conversions),
            nonzero_term('repay_debits', repay_debits),
            nonzero_term('other_movements', other_movements)
        ) as terms,
        *
    from balances
),

interval_findings as (
    select
        kind || ':' || account || ':' || asset || ':'
        || coalesce(cast(epoch_ms(interval_start) as varchar), 'opening') || ':'
        || epoch_ms(interval_end) || ':' || end_source as break_id,
        account,
        kind,
        asset,
        status,
        interval_kind,
        interval_start,
        interval_end,
        start_source,
        end_source,
        value_start,
        value_end,
        expected_change as expected,
        actual_change as actual,
        difference,
        pending_rows,
        terms,
        kind || ' of ' || asset || ' off by ' || plain_decimal(difference) || ' between '
        || coalesce(iso_utc(interval_start), 'the opening') || ' and ' || iso_utc(interval_end)
        || ' (snapshots ' || plain_decimal(value_start) || ' -> ' || plain_decimal(value_end)
        || '; ledger ' || plain_decimal(expected_change) || ')' as detail,
        cast(null as timestamp) as happened_at,
        false as is_primary,
        interval_start as region_start,
        interval_end as region_end,
        [asset] as assets
    from interval_rows
    where status in ('break', 'provisional')
),

charge_findings as (
    select
        'interest_charge:' || account || ':' || interest_key as break_id,
        account,
        'interest_charge' as kind,
        asset,
        'break' as status,
        'charge' as interval_kind,
        accrued_at as interval_start,
        accrued_at as interval_end,
        expected_interest as expected,
        interest as actual,
        charge_difference as difference,
        concat_ws(
            '; ',
            'interest_key=' || interest_key,
            'type=' || interest_type,
            term('principal', principal),
            term('interest_rate', interest_rate)
        ) as terms,
        interest_type || ' charge of ' || plain_decimal(interest) || ' ' || asset || ' at '
        || iso_utc(accrued_at) || ' <> ceil8(' || plain_decimal(principal) || ' x '
        || plain_decimal(interest_rate) || ' / 24) = '
        || coalesce(plain_decimal(expected_interest), 'not computable') as detail,
        accrued_at as happened_at,
        [asset, borrowed_asset] as assets
    from audit
    where is_audited and (charge_difference <> 0 or expected_interest is null)
),

rate_findings as (
    select
        'interest_rate:' || account || ':' || interest_key as break_id,
        account,
        'interest_rate' as kind,
        borrowed_asset as asset,
        'break' as status,
        'charge' as interval_kind,
        accrued_at as interval_start,
        accrued_at as interval_end,
        published_rate as expected,
        interest_rate as actual,
        rate_difference as difference,
        'interest_key=' || interest_key || '; type=' || interest_type as terms,
        interest_type || ' charge of ' || borrowed_asset || ' at ' || iso_utc(accrued_at)
        || ' used the rate ' || plain_decimal(interest_rate) || '; the published rate was '
        || coalesce(plain_decimal(published_rate), 'none') as detail,
        accrued_at as happened_at,
        [asset, borrowed_asset] as assets
    from audit
    where is_audited and rate_difference <> 0
),

hour_findings as (
    select
        break_kind || ':' || account || ':' || borrowed_asset || ':' || charge_kind || ':'
        || epoch_ms(accrued_at) as break_id,
        account,
        break_kind as kind,
        borrowed_asset as asset,
        status,
        lower(charge_kind) as interval_kind,
        accrued_at as interval_start,
        accrued_at as interval_end,
        ledger_principal as expected,
        charged_principal as actual,
        principal_difference as difference,
        'charges=' || charges_in_hour || '; kind=' || charge_kind as terms,
        case
            when break_kind = 'interest_missing_hour'
                then
                    'no interest charged on ' || borrowed_asset || ' at ' || iso_utc(accrued_at)
                    || ' while the ledger holds a principal of ' || plain_decimal(ledger_principal)
            when break_kind = 'interest_missing_on_borrow'
                then
                    'loans of ' || plain_decimal(ledger_principal) || ' ' || borrowed_asset
                    || ' at ' || iso_utc(accrued_at) || ' have no ON_BORROW charge'
            else
                charge_kind || ' charges of ' || borrowed_asset || ' at ' || iso_utc(accrued_at)
                || ' on a principal of ' || plain_decimal(charged_principal) || '; the ledger '
                || 'holds ' || plain_decimal(ledger_principal)
        end as detail,
        case when charge_kind = 'ON_BORROW' then accrued_at end as happened_at,
        charge_kind = 'ON_BORROW' as is_primary,
        segment_start as region_start,
        case when segment_start is null then segment_end else accrued_at end as region_end,
        segment_start,
        segment_end,
        [borrowed_asset] as assets
    from hours
    where status in ('break', 'provisional')
),

repay_findings as (
    select
        'repay_split:' || repays.account || ':' || repays.repay_key as break_id,
        repays.account,
        'repay_split' as kind,
        repays.asset,
        repays.status,
        'repay' as interval_kind,
        repays.repaid_at as interval_start,
        repays.repaid_at as interval_end,
        repays.expected_interest as expected,
        repays.interest as actual,
        repays.interest_difference as difference,
        concat_ws(
            '; ',
            'repay txId=' || repays.tx_id,
            term('amount', repays.amount),
            term('unpaid_interest', repays.unpaid_interest)
        ) as terms,
        'repay txId ' || repays.tx_id || ' of ' || plain_decimal(repays.amount) || ' '
        || repays.asset || ' at ' || iso_utc(repays.repaid_at) || ' paid '
        || plain_decimal(repays.interest) || ' of interest; interest first would pay '
        || plain_decimal(repays.expected_interest) || ' (unpaid: '
        || plain_decimal(repays.unpaid_interest) || ')' as detail,
        repays.repaid_at as happened_at,
        probes.interest_segment_start as region_start,
        case
            when probes.interest_segment_start is null then probes.segment_end
            else repays.repaid_at
        end as region_end,
        probes.interest_segment_start as segment_start,
        probes.segment_end,
        [repays.asset] as assets
    from repays
    left join probes
        on repays.account = probes.account
        and repays.repay_key = probes.probe_key
        and probes.probe_kind = 'repay'
    where repays.status in ('break', 'provisional')
),

liquidation_findings as (
    select
        'liquidation_fills:' || liquidations.account || ':' || liquidations.liquidation_key
            as break_id,
        liquidations.account,
        'liquidation_fills' as kind,
        symbols.base_asset as asset,
        liquidations.status,
        'liquidation' as interval_kind,
        liquidations.liquidated_at as interval_start,
        liquidations.liquidated_at as interval_end,
        liquidations.executed_qty as expected,
        liquidations.filled_qty as actual,
        liquidations.qty_difference as difference,
        'orderId=' || liquidations.order_id || '; fills=' || liquidations.fill_count as terms,
        'force liquidation ' || liquidations.symbol || ' orderId ' || liquidations.order_id
        || ' at ' || iso_utc(liquidations.liquidated_at) || ' executed '
        || plain_decimal(liquidations.executed_qty) || '; its fills in trades add up to '
        || plain_decimal(liquidations.filled_qty) || ' (' || liquidations.fill_count
        || ' fills)' as detail,
        liquidations.liquidated_at as happened_at,
        [symbols.base_asset, symbols.quote_asset] as assets
    from liquidations
    left join symbols on liquidations.symbol = symbols.symbol
    where liquidations.status in ('break', 'provisional')
),

flow_findings as (
    select
        'capital_flow:' || account || ':' || match_key as break_id,
        account,
        'capital_flow' as kind,
        coalesce(flow_asset, typed_asset) as asset,
        status,
        flow_class as interval_kind,
        row_at as interval_start,
        row_at as interval_end,
        typed_amount as expected,
        flow_amount as actual,
        cast(coalesce(flow_amount, 0) - coalesce(typed_amount, 0) as decimal(38, 18))
            as difference,
        'match=' || match_status as terms,
        description || ' [' || flow_side || ' | ' || typed_side || ']' as detail,
        row_at as happened_at,
        list_sort(list_distinct([flow_asset, typed_asset])) as assets
    from flows
    -- a matched row is never a break: its status is worked out only for the others
    where match_status <> 'matched' and status in ('break', 'provisional')
),

pending_findings as (
    select
        case when pending.is_young then 'pending' else 'pending_stale' end as kind,
        kind || ':' || pending.account || ':' || pending.row_key as break_id,
        pending.account,
        pending.asset,
        case when pending.is_young then 'provisional' else 'break' end as status,
        'pending' as interval_kind,
        pending.ledger_at as interval_start,
        pending.ledger_at as interval_end,
        pending.balance_effect as difference,
        pending.row_key as terms,
        pending.row_key || ' at ' || iso_utc(pending.ledger_at) || ' has been PENDING for '
        || pending.age_hours || ' hours'
        || case
            when pending.is_young
                then ': its own amount may still go either way'
            else
                ', past the ' || settings.pending_max_age_hours
                || ' hours a PENDING row may excuse its own amount'
        end as detail,
        pending.ledger_at as happened_at,
        [pending.asset] as assets
    from pending
    cross join settings
),

primary_findings as (
    select * from charge_findings
    union all by name
    select * from rate_findings
    union all by name
    select * from liquidation_findings
    union all by name
    select * from flow_findings
    union all by name
    select * from pending_findings
),

final as (
    select
        *,
        true as is_primary,
        cast(0 as bigint) as pending_rows
    from primary_findings
    union all by name
    select * from interval_findings
    union all by name
    select * from hour_findings
    union all by name
    select
        *,
        false as is_primary,
        cast(0 as bigint) as pending_rows
    from repay_findings
)

select * from final
