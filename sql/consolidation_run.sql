-- consolidation_run: one consolidation run's row, to export its folder again.
-- grain: at most one row (consolidations).
-- inputs: consolidations
-- parameters: $run_id
with

final as (
    select *
    from consolidations
    where run_id = $run_id
)

select * from final
