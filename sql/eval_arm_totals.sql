-- eval_arm_totals: outcome counts, turns, tokens, cost and time of every arm of one evaluation.
-- grain: one row per arm_id of $eval_id
-- inputs: eval_results
-- parameters: $eval_id
with results as (
    select * from eval_results where eval_id = $eval_id
),

final as (
    select
        arm_id,
        count(*)::bigint as n_tasks,
        count(*) filter (where correct)::bigint as n_correct,
        count(*) filter (where status = 'submitted')::bigint as n_submitted,
        count(*) filter (where status = 'error')::bigint as n_errors,
        coalesce(avg(n_turns), 0)::double as mean_turns,
        coalesce(sum(tokens_in), 0)::bigint as tokens_in,
        coalesce(sum(tokens_out), 0)::bigint as tokens_out,
        coalesce(sum(cost_usd), 0)::double as cost_usd,
        coalesce(sum(seconds), 0)::double as seconds
    from results
    group by arm_id
)

select * from final
order by arm_id
