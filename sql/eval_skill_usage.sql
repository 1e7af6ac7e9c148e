-- eval_skill_usage: for every arm with a skill, how often each section or file was read or
-- cited, and the accuracy of the runs that used it against the runs that did not.
-- grain: one row per (arm_id, item_kind, item) of $eval_id that some run used
-- inputs: eval_arms, eval_results, skill_usage
-- parameters: $eval_id
with arms as (
    select * from eval_arms where eval_id = $eval_id
),

results as (
    select * from eval_results where eval_id = $eval_id
),

usage as (
    select * from skill_usage where eval_id = $eval_id
),

per_run as (
    select
        arm_id,
        trajectory_id,
        item_kind,
        item,
        bool_or(how = 'read') as was_read,
        bool_or(how = 'cited') as was_cited
    from usage
    group by arm_id, trajectory_id, item_kind, item
),

joined as (
    select
        p.*,
        r.correct
    from per_run as p
    inner join results as r on r.arm_id = p.arm_id and r.trajectory_id = p.trajectory_id
),

totals as (
    select arm_id, count(*) as n_runs, count(*) filter (where correct) as n_correct
    from results
    group by arm_id
),

final as (
    select
        a.model,
        a.role,
        a.label,
        j.item_kind,
        j.item,
        t.n_runs::bigint as n_runs,
        count(*)::bigint as n_used,
        count(*) filter (where j.was_read)::bigint as n_read,
        count(*) filter (where j.was_cited)::bigint as n_cited,
        avg(j.correct::int)::double as accuracy_used,
        case
            when t.n_runs > count(*)
                then ((t.n_correct - count(*) filter (where j.correct)) / (t.n_runs - count(*)))::double
        end as accuracy_not_used
    from joined as j
    inner join arms as a on a.arm_id = j.arm_id
    inner join totals as t on t.arm_id = j.arm_id
    group by a.model, a.role, a.label, j.item_kind, j.item, t.n_runs, t.n_correct
)

select * from final
order by model, label, n_used desc, item
