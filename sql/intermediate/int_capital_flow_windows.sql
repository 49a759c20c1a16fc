-- materialized: view
-- Per account, the span the capital-flow cross-check holds both sides read in: from where the
-- capital flow and the typed history were both read completely on, to where both were read.
-- Typed rows before `checked_from` are left out of the check (the capital flow is kept 90
-- days); a row outside [checked_from, checked_to) is unverified.
with openings as (
    select * from int_account_openings
),

coverage as (
    select * from int_stream_coverage
),

final as (
    select
        openings.account,
        greatest(openings.history_read_from, coverage.covered_from) as checked_from,
        least(openings.history_read_to, coverage.covered_to) as checked_to
    from openings
    inner join coverage
        on openings.account = coverage.account
        and coverage.stream = 'capital_flow'
        and coverage.partition_key = ''
)

select * from final
