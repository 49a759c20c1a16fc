-- Every check that does not match, in one shape (int_recon_findings: the kinds, and what each
-- checks), each with the root cause that explains it (cause_id, a row of recon_causes).
-- status is 'break' or 'provisional' (see recon_status); `terms` lists the terms of the
-- expected side (the balance's non-zero ones); `detail` says what disagrees, naming both
-- sides; `happened_at` is the instant of a finding about one row.
-- test: unique(break_id)
-- test: not_null(break_id, cause_id)
-- test: accepted_values(kind: BREAK_KINDS)
-- test: accepted_values(status: break, provisional)
with findings as (
    select * from int_recon_findings
),

causes as (
    select * from int_break_causes
),

final as (
    select
        findings.account,
        findings.kind,
        findings.asset,
        findings.status,
        findings.interval_kind,
        findings.interval_start,
        findings.interval_end,
        findings.start_source,
        findings.end_source,
        findings.value_start,
        findings.value_end,
        findings.expected,
        findings.actual,
        findings.difference,
        findings.pending_rows,
        findings.terms,
        findings.break_id,
        causes.cause_id,
        findings.detail,
        findings.happened_at
    from findings
    left join causes on findings.break_id = causes.break_id
)

select * from final
