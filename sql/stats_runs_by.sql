-- stats_runs_by: runs and success rate per source and one run column ($by).
-- Grain: one row per source and value of the $by column (null when the source does not record
--   it). Without $limit, every group, by source; with it, the $limit groups with the most runs
--   over every source.
-- Inputs: trajectories.
-- Parameters: $source (varchar, null for every source), $by (varchar: 'model' or 'task_id',
--   also the output column's name), $limit (integer, null for no limit).
with trajectories as (
    select * from trajectories
    where $source::varchar is null or source = $source::varchar
),

final as (
    select
        source::varchar as source,
        columns(lambda c: c = $by::varchar)::varchar,
        count(*)::bigint as trajectories,
        count(*) filter (where outcome = 'success')::bigint as successes,
        count(*) filter (where outcome = 'failure')::bigint as failures,
        round(
            count(*) filter (where outcome = 'success')
            / nullif(count(*) filter (where outcome in ('success', 'failure')), 0), 4
        )::double as success_rate,
        round(avg(n_steps), 1)::double as steps_per_run
    from trajectories
    group by all
)

select * from final
order by
    case when $limit::integer is null then source end,
    trajectories desc,
    source,
    2 nulls last
limit $limit
