-- stats_outcomes: how runs ended, and where each outcome came from.
-- Grain: one row per source, outcome and outcome_origin.
-- Inputs: trajectories.
-- Parameters: $source (varchar, null for every source).
with trajectories as (
    select * from trajectories
    where $source::varchar is null or source = $source::varchar
),

final as (
    select
        source::varchar as source,
        outcome::varchar as outcome,
        outcome_origin::varchar as outcome_origin,
        count(*)::bigint as trajectories,
        round(avg(reward), 4)::double as mean_reward
    from trajectories
    group by source, outcome, outcome_origin
)

select * from final
order by source, outcome, outcome_origin
