-- coverage_drop_reasons: why the lessons of one consolidation that did not reach its skill fell
--   out, most common first.
-- grain: one row per fate (dropped, unaccounted), stage and reason ('no drop row says why' for
--   unaccounted lessons).
-- inputs: run_fate (lesson_fate rows of the consolidation run reported on)
-- parameters: none
with

gone as (
    select * from run_fate where fate in ('dropped', 'unaccounted')
),

final as (
    select
        fate,
        dropped_stage,
        coalesce(dropped_reason, 'no drop row says why') as dropped_reason,
        count(*)::bigint as n_lessons,
        count(distinct trajectory_id)::bigint as n_runs
    from gone
    group by fate, dropped_stage, coalesce(dropped_reason, 'no drop row says why')
)

select * from final
order by n_lessons desc, fate, dropped_stage, dropped_reason
