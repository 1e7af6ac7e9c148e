-- failed_tasks_without_lesson: tasks where runs failed but no lesson from any run of the task
--   reached the newest skill: the gaps a reader of the skill will not see addressed.
-- grain: one row per task with at least one failed run and no lesson in the newest skill.
-- inputs: trajectories, lessons, latest_skill_lessons, latest_lesson_fate
-- parameters: none
with

runs as (
    select * from trajectories where task_id is not null
),

lessons_ as (
    select l.lesson_id, l.trajectory_id, r.task_id
    from lessons as l
    inner join runs as r on r.trajectory_id = l.trajectory_id
),

per_task as (
    select
        r.task_id,
        count(distinct r.trajectory_id) filter (where r.outcome = 'failure') as n_failed_runs,
        count(distinct r.trajectory_id) as n_runs,
        list(distinct r.source order by r.source) as sources
    from runs as r
    group by r.task_id
),

task_lessons as (
    select
        l.task_id,
        count(*) as n_lessons,
        count(fa.lesson_id) as n_lessons_read,
        count(s.lesson_id) as n_lessons_in_skill
    from lessons_ as l
    left join latest_skill_lessons as s on s.lesson_id = l.lesson_id
    left join latest_lesson_fate as fa on fa.lesson_id = l.lesson_id
    group by l.task_id
),

final as (
    select
        p.task_id,
        p.sources,
        p.n_failed_runs::bigint as n_failed_runs,
        p.n_runs::bigint as n_runs,
        coalesce(t.n_lessons, 0)::bigint as n_lessons,
        coalesce(t.n_lessons_read, 0)::bigint as n_lessons_read,
        case
            when coalesce(t.n_lessons, 0) = 0 then 'no lessons found'
            when coalesce(t.n_lessons_read, 0) = 0 then 'lessons not read by the run'
            when t.n_lessons_read < t.n_lessons then 'lessons dropped or not read by the run'
            else 'every lesson dropped'
        end as why
    from per_task as p
    left join task_lessons as t on t.task_id = p.task_id
    where p.n_failed_runs > 0 and coalesce(t.n_lessons_in_skill, 0) = 0
)

select * from final
order by n_failed_runs desc, task_id
