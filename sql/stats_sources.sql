-- stats_sources: what the lake holds, per source.
-- Grain: one row per source.
-- Inputs: trajectories, steps.
-- Parameters: $source (varchar, null for every source).
with trajectories as (
    select * from trajectories
    where $source::varchar is null or source = $source::varchar
),

steps as (
    select * from steps
    where $source::varchar is null or source = $source::varchar
),

runs as (
    select
        source,
        count(*) as trajectories,
        count(distinct task_id) as tasks,
        count(distinct model) as models,
        count(*) filter (where outcome = 'success') as successes,
        count(*) filter (where outcome = 'failure') as failures,
        count(*) filter (where outcome = 'unknown') as unknown,
        sum(n_steps) as steps
    from trajectories
    group by source
),

tools as (
    select
        source,
        count(*) filter (where kind = 'tool_call') as tool_calls,
        count(*) filter (where kind = 'tool_result' and is_error) as tool_errors
    from steps
    group by source
),

final as (
    select
        runs.source::varchar as source,
        runs.trajectories::bigint as trajectories,
        runs.tasks::bigint as tasks,
        runs.models::bigint as models,
        runs.successes::bigint as successes,
        runs.failures::bigint as failures,
        runs.unknown::bigint as unknown,
        round(runs.successes / nullif(runs.successes + runs.failures, 0), 4)::double as success_rate,
        runs.steps::bigint as steps,
        round(runs.steps / runs.trajectories, 1)::double as steps_per_run,
        coalesce(tools.tool_calls, 0)::bigint as tool_calls,
        coalesce(tools.tool_errors, 0)::bigint as tool_errors
    from runs
    left join tools using (source)
)

select * from final
order by source
