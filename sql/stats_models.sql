-- stats_models: runs and success rate per model.
-- Grain: one row per source and model (null when the source does not name it).
-- Inputs: trajectories.
-- Parameters: $source (varchar, null for every source).
with trajectories as (
    select * from trajectories
    where $source::varchar is null or source = $source::varchar
),

final as (
    select
        source::varchar as source,
        model::varchar as model,
        count(*)::bigint as trajectories,
        count(*) filter (where outcome = 'success')::bigint as successes,
        count(*) filter (where outcome = 'failure')::bigint as failures,
        round(
            count(*) filter (where outcome = 'success')
            / nullif(count(*) filter (where outcome in ('success', 'failure')), 0), 4
        )::double as success_rate,
        round(avg(n_steps), 1)::double as steps_per_run
    from trajectories
    group by source, model
)

select * from final
order by source, trajectories desc, model nulls last
