-- eval_transfer: the transfer matrix in long form, accuracy of every model with every skill.
-- grain: one row per (model, label) of $eval_id, ablation arms excluded
-- inputs: eval_arms
-- parameters: $eval_id
with arms as (
    select * from eval_arms where eval_id = $eval_id and role <> 'ablation'
),

final as (
    select
        model,
        label,
        role,
        n_tasks,
        n_correct,
        accuracy,
        ci_low,
        ci_high,
        tokens_in + tokens_out as tokens,
        cost_usd
    from arms
)

select * from final
order by model, case role when 'baseline' then 0 when 'incumbent' then 1 else 2 end, label
