-- eval_outcomes: right or wrong, per task and arm, for paired comparisons.
-- grain: one row per (arm_id, task_id) of $eval_id
-- inputs: eval_results
-- parameters: $eval_id
with results as (
    select * from eval_results where eval_id = $eval_id
),

final as (
    select
        arm_id,
        task_id,
        bool_or(correct) as correct
    from results
    group by arm_id, task_id
)

select * from final
order by arm_id, task_id
