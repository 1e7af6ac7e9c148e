-- eval_ablation: skill sections and files ranked by their effect (full skill minus the skill
-- without them), beside how often the full-skill agent read or cited them.
-- grain: one row per (model, unit) of $eval_id
-- inputs: eval_comparisons, skill_usage
-- parameters: $eval_id
with comparisons as (
    select * from eval_comparisons where eval_id = $eval_id and kind = 'ablation'
),

usage as (
    select * from skill_usage where eval_id = $eval_id
),

used as (
    select
        arm_id,
        item,
        count(distinct trajectory_id) filter (where how = 'read') as n_read,
        count(distinct trajectory_id) filter (where how = 'cited') as n_cited
    from usage
    group by arm_id, item
),

final as (
    select
        c.model,
        c.rank,
        c.unit,
        c.delta as effect,
        c.ci_low,
        c.ci_high,
        c.accuracy as with_unit,
        c.reference_accuracy as without_unit,
        c.wins,
        c.losses,
        c.n_paired,
        coalesce(u.n_read, 0)::bigint as n_read,
        coalesce(u.n_cited, 0)::bigint as n_cited
    from comparisons as c
    left join used as u on u.arm_id = c.arm_id and u.item = c.unit
)

select * from final
order by model, rank, unit
