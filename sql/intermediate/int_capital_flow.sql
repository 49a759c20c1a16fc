-- The capital flow (stg_capital_flow) read once into a table: the ledger books the movements
-- only it reports (int_ledger_capital_flow) and the cross-check pairs every row
-- (int_capital_flow_matches); the staging view would dedup the lake's rows for each.
-- grain: time(flowed_at)
-- test: unique(account, flow_key)
with flows as (
    select * from stg_capital_flow
),

final as (
    select * from flows
)

select * from final
