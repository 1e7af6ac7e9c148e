-- coverage_fate_summary: how many lessons of one consolidation ended which way.
-- grain: one row per fate (merged, deduplicated, dropped, unaccounted) and, for dropped lessons,
--   the stage where they fell out (empty otherwise).
-- inputs: run_fate (lesson_fate rows of the consolidation run reported on)
-- parameters: none
with

fates as (
    select * from run_fate
),

final as (
    select
        fate,
        coalesce(dropped_stage, '') as stage,
        count(*)::bigint as n_lessons,
        count(distinct trajectory_id)::bigint as n_trajectories,
        min(case fate
            when 'merged' then 1 when 'deduplicated' then 2 when 'dropped' then 3 else 4
        end) as fate_order,
        min(case dropped_stage
            when 'support' then 1 when 'summary' then 2 when 'merge' then 3
            when 'apply' then 4 when 'lint' then 5 else 0
        end) as stage_order
    from fates
    group by fate, coalesce(dropped_stage, '')
)

select fate, stage, n_lessons, n_trajectories
from final
order by fate_order, stage_order, stage
