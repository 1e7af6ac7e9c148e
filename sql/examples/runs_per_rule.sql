-- runs_per_rule: what each analysis rule found, in failed and in successful runs, and how much of
--   it the newest skill kept.
-- grain: one row per source, analyst, rule (the miner's rule, or the model analyst's case, e.g.
--   single:failure) and outcome of the run, over the lessons of the runs of the sources the
--   newest consolidation read. n_lessons_read: lessons that consolidation read; in_skill: lessons
--   that reached its skill (merged or deduplicated), dropped: lessons it dropped.
-- inputs: lesson_facts, latest_lesson_fate, trajectories
-- parameters: none
with

scope as (
    select distinct t.source
    from latest_lesson_fate as f
    inner join trajectories as t on t.trajectory_id = f.trajectory_id
),

facts as (
    select f.*
    from lesson_facts as f
    semi join scope as s on s.source = f.source
),

fates as (
    select lesson_id, fate from latest_lesson_fate
),

final as (
    select
        f.source,
        f.analyst,
        coalesce(f.rule, '(none)') as rule,
        coalesce(f.outcome, '(unknown)') as outcome,
        count(*)::bigint as n_lessons,
        count(distinct f.trajectory_id)::bigint as n_runs,
        count(distinct f.task_id)::bigint as n_tasks,
        count(x.lesson_id)::bigint as n_lessons_read,
        count(*) filter (where x.fate in ('merged', 'deduplicated'))::bigint as n_in_skill,
        count(distinct f.trajectory_id)
            filter (where x.fate in ('merged', 'deduplicated'))::bigint as n_runs_in_skill,
        count(*) filter (where x.fate = 'dropped')::bigint as n_dropped
    from facts as f
    left join fates as x on x.lesson_id = f.lesson_id
    group by f.source, f.analyst, coalesce(f.rule, '(none)'), coalesce(f.outcome, '(unknown)')
)

select * from final
order by source, analyst, n_runs desc, rule, outcome
