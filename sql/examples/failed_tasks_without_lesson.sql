-- failed_tasks_without_lesson: tasks where runs failed but no lesson from any run of the task
--   reached the newest skill: the failures a reader of the skill will not see addressed.
-- grain: one row per source and task with at least one failed run and no lesson in the newest
--   skill, over the sources the newest consolidation read (so a skill of one source does not
--   list the tasks of another). why:
--     no lessons found                analysis found nothing in the task's runs
--     lessons not read by the run     the consolidation read none of them (its --where left
--                                     them out, e.g. a held-out split, or they are newer)
--     every lesson dropped            it read them all and dropped them all (see lesson_fate)
--     lessons dropped or not read     some of each
-- inputs: trajectories, lessons, latest_lesson_fate
-- parameters: none
with

scope as (
    select distinct t.source
    from latest_lesson_fate as f
    inner join trajectories as t on t.trajectory_id = f.trajectory_id
),

runs as (
    select t.*
    from trajectories as t
    semi join scope as s on s.source = t.source
    where t.task_id is not null
),

per_task as (
    select
        source,
        task_id,
        count(*) filter (where outcome = 'failure') as n_failed_runs,
        count(*) as n_runs
    from runs
    group by source, task_id
),

task_lessons as (
    select
        r.source,
        r.task_id,
        count(*) as n_lessons,
        count(f.lesson_id) as n_lessons_read,
        count(*) filter (where f.fate = 'dropped') as n_lessons_dropped,
        count(*) filter (where f.fate in ('merged', 'deduplicated')) as n_lessons_in_skill
    from lessons as l
    inner join runs as r on r.trajectory_id = l.trajectory_id
    left join latest_lesson_fate as f on f.lesson_id = l.lesson_id
    group by r.source, r.task_id
),

final as (
    select
        p.source,
        p.task_id,
        p.n_failed_runs::bigint as n_failed_runs,
        p.n_runs::bigint as n_runs,
        coalesce(t.n_lessons, 0)::bigint as n_lessons,
        coalesce(t.n_lessons_read, 0)::bigint as n_lessons_read,
        coalesce(t.n_lessons_dropped, 0)::bigint as n_lessons_dropped,
        case
            when coalesce(t.n_lessons, 0) = 0 then 'no lessons found'
            when coalesce(t.n_lessons_read, 0) = 0 then 'lessons not read by the run'
            when t.n_lessons_read = t.n_lessons then 'every lesson dropped'
            else 'lessons dropped or not read'
        end as why
    from per_task as p
    left join task_lessons as t on t.source = p.source and t.task_id = p.task_id
    where p.n_failed_runs > 0 and coalesce(t.n_lessons_in_skill, 0) = 0
)

select * from final
order by n_failed_runs desc, source, try_cast(task_id as bigint) nulls last, task_id
