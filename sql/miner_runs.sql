-- miner_runs: each trajectory with the grader's view unpacked (gold actions, correct answer,
-- expected outputs), as the miner reads them.
-- grain: one row per trajectory.
-- inputs: trajectories.
-- The grader's keys vary by source; the first present of each list wins:
--   gold actions      grader.actions | grader.gold_actions | grader.task.actions   ({name, kwargs|arguments})
--   correct answer    grader.answer | grader.correct_answer | grader.gold_answer | grader.expected_answer
--   expected outputs  grader.outputs | grader.task.outputs                          (strings the agent must say)
with
runs as (
    select
        trajectory_id,
        source,
        task_id,
        outcome,
        reward,
        n_steps,
        try_cast(meta as json) -> '$.grader' as grader
    from trajectories
),

unpacked as (
    select
        *,
        coalesce(grader -> '$.actions', grader -> '$.gold_actions', grader -> '$.task.actions') as gold_json,
        coalesce(
            grader ->> '$.answer',
            grader ->> '$.correct_answer',
            grader ->> '$.gold_answer',
            grader ->> '$.expected_answer'
        ) as correct_answer,
        coalesce(grader -> '$.outputs', grader -> '$.task.outputs') as outputs_json
    from runs
),

final as (
    select
        trajectory_id,
        source,
        task_id,
        outcome,
        reward,
        n_steps,
        case when json_type(gold_json) = 'ARRAY' then gold_json::varchar end as gold_actions,
        correct_answer,
        case
            when json_type(outputs_json) = 'ARRAY' and json_array_length(outputs_json) > 0
            then outputs_json::varchar
        end as expected_outputs
    from unpacked
)

select * from final
order by trajectory_id
