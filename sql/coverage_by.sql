-- coverage_by: the share of failed runs, and of successful runs, that the skill covers: overall
--   and by source, model, task and tool.
-- grain: one row per outcome (failure, success), dimension (all, source, model, task, tool) and
--   value; within a dimension, the values with the most runs not covered come first. A run counts once under every tool it called, and under '(no tool call)' when it
--   called none; a null source, model or task shows as '(unknown)'.
-- inputs: coverage_trajectories (the result of sql/coverage_trajectories.sql)
-- parameters: none
with

runs as (
    select * from coverage_trajectories where outcome in ('failure', 'success')
),

by_value as (
    select outcome, 1 as dim_order, 'all' as dimension, 'all' as value, status from runs
    union all
    select outcome, 2, 'source', coalesce(source, '(unknown)'), status from runs
    union all
    select outcome, 3, 'model', coalesce(model, '(unknown)'), status from runs
    union all
    select outcome, 4, 'task', coalesce(task_id, '(unknown)'), status from runs
    union all
    select
        outcome,
        5,
        'tool',
        unnest(case when len(tools) = 0 then ['(no tool call)'] else tools end),
        status
    from runs
),

final as (
    select
        outcome,
        dimension,
        value,
        count(*)::bigint as n_trajectories,
        count(*) filter (where status = 'covered')::bigint as n_covered,
        count(*) filter (where status = 'dropped')::bigint as n_dropped,
        count(*) filter (where status = 'not_in_run')::bigint as n_not_in_run,
        count(*) filter (where status = 'no_lessons')::bigint as n_no_lessons,
        round(count(*) filter (where status = 'covered') / count(*), 4)::double as share_covered,
        min(dim_order) as dim_order
    from by_value
    group by outcome, dimension, value
)

select * exclude (dim_order)
from final
order by
    outcome, dim_order, n_trajectories - n_covered desc, n_trajectories desc,
    try_cast(value as bigint) nulls last, value
