-- The breaks by root cause (int_break_causes): one row per cause, with the break rows of
-- recon_breaks it explains (their cause_id). cause_kind: the kind of the finding that
-- describes it best (a row-level one first: capital_flow, interest_principal for a loan's
-- first hour, interest_missing_on_borrow, liquidation_fills, pending_stale, interest_charge,
-- interest_rate, repay_split, pending), else 'snapshot' (one snapshot disagrees with both of its
-- neighbours), 'interval' (what is missing from one interval) or 'hours' (hours charged on
-- another principal than the ledger holds). status: 'break' when any of its rows is one.
-- test: unique(cause_id)
-- test: not_null(cause_id, account, status, cause_kind, description)
-- test: accepted_values(status: break, provisional)
with breaks as (
    select * from recon_breaks
),

ranked as (
    select
        *,
        case kind
            when 'capital_flow' then 1
            when 'interest_principal' then case when interval_kind = 'on_borrow' then 2 end
            when 'interest_missing_on_borrow' then 3
            when 'liquidation_fills' then 4
            when 'pending_stale' then 5
            when 'interest_charge' then 6
            when 'interest_rate' then 7
            when 'repay_split' then 8
            when 'pending' then 9
        end as description_rank,
        split_part(cause_id, ':', 1) as cause_family
    from breaks
),

grouped as (
    select
        cause_id,
        account,
        any_value(cause_family) as cause_family,
        case when bool_or(status = 'break') then 'break' else 'provisional' end as status,
        arg_min(kind, (description_rank, kind, detail)) filter (
            where description_rank is not null
        ) as row_kind,
        arg_min(detail, (description_rank, kind, detail)) filter (
            where description_rank is not null
        ) as row_detail,
        string_agg(distinct asset, ', ' order by asset) as assets,
        min(happened_at) as happened_at,
        case
            when not bool_or(interval_kind = 'opening')
                then min(coalesce(interval_start, interval_end))
        end as span_start,
        max(interval_end) as span_end,
        min(interval_end) as first_end,
        count(*) as symptoms,
        string_agg(
            kind || ' ' || asset || ' ' || plain_decimal(difference), '; '
            order by kind, asset
        ) filter (where kind in ('principal', 'interest', 'balance')) as interval_differences,
        count(*) filter (where kind in ('interest_principal', 'interest_missing_hour'))
            as hour_symptoms,
        string_agg(distinct kind, ', ' order by kind) as symptom_kinds,
        arg_min(detail, (coalesce(interval_start, interval_end), detail)) filter (
            where kind in ('interest_principal', 'interest_missing_hour')
        ) as first_hour_detail
    from ranked
    group by cause_id, account
),

final as (
    select
        cause_id,
        account,
        status,
        case
            when cause_family = 'at' then row_kind
            when cause_family = 'snapshot' then 'snapshot'
            when cause_family = 'interval' then 'interval'
            else 'hours'
        end as cause_kind,
        assets,
        happened_at,
        span_start,
        span_end,
        case
            when cause_family = 'at' then row_detail
            when cause_family = 'snapshot'
                then
                    'the snapshot at ' || iso_utc(first_end)
                    || ' disagrees with the ledger between its neighbours: '
                    || interval_differences
            when cause_family = 'interval'
                then
                    'unexplained between ' || coalesce(iso_utc(span_start), 'the opening')
                    || ' and ' || iso_utc(span_end) || ': ' || interval_differences
                    || ' (a row missing from the history, or one too many)'
                    || coalesce('; first hour: ' || first_hour_detail, '')
            else
                hour_symptoms || ' hour(s) of ' || assets || ' from ' || iso_utc(span_start)
                || ' to ' || iso_utc(span_end) || ' charged on another principal than the '
                || 'ledger holds (a loan or repay missing, or charges wrong); first: '
                || first_hour_detail
        end as description,
        symptoms,
        symptom_kinds
    from grouped
)

select * from final
