-- behaviour_task_repeats: how much of each source's runs share their task with other runs.
-- grain: one row per source (runs with a known outcome only).
-- inputs: trajectories
-- parameters: none
with
runs as (
    select source, task_id, count(*) over (partition by source, task_id) as task_runs
    from trajectories
    where outcome in ('success', 'failure')
),

final as (
    select
        source,
        count(*)::bigint as n_runs,
        count(*) filter (where task_id is not null and task_runs > 1)::bigint as n_repeated
    from runs
    group by all
)

select * from final
order by source
