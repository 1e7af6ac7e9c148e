-- stats_tasks: the tasks with the most runs, with their success rate.
-- Grain: one row per source and task_id; the $limit tasks with the most runs.
-- Inputs: trajectories.
-- Parameters: $source (varchar, null for every source), $limit (integer).
with trajectories as (
    select * from trajectories
    where $source::varchar is null or source = $source::varchar
),

final as (
    select
        source::varchar as source,
        task_id::varchar as task_id,
        count(*)::bigint as trajectories,
        count(*) filter (where outcome = 'success')::bigint as successes,
        count(*) filter (where outcome = 'failure')::bigint as failures,
        round(
            count(*) filter (where outcome = 'success')
            / nullif(count(*) filter (where outcome in ('success', 'failure')), 0), 4
        )::double as success_rate,
        round(avg(n_steps), 1)::double as steps_per_run
    from trajectories
    group by source, task_id
)

select * from final
order by trajectories desc, source, task_id nulls last
limit $limit
