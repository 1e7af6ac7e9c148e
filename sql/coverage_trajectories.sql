-- coverage_trajectories: which runs the skill of one consolidation covers, and why not.
-- grain: one row per trajectory in the run's scope (run_trajectories: the runs its --where
--   selected) that is not held out. A run is covered when at least one of its lessons reached
--   the skill (in_skill in the run's lesson fates). status:
--     covered      at least one lesson reached the skill
--     dropped      the consolidation read its lessons and none reached the skill
--     not_in_run   it has lessons, but the consolidation read none of them
--     no_lessons   analysis found nothing in it
--   tools lists the distinct tools it called (empty when none).
-- inputs: trajectories, lessons, steps,
--   run_scope (trajectory_id of the run_trajectories rows of the consolidation run reported on),
--   run_fate (lesson_fate rows of the consolidation run reported on),
--   held_out (trajectory_id of the runs kept out of the skill; may be empty)
-- parameters: none
with

runs as (
    select t.*
    from trajectories as t
    semi join run_scope as s
        on s.trajectory_id = t.trajectory_id
    anti join held_out as h
        on h.trajectory_id = t.trajectory_id
),

lesson_counts as (
    select trajectory_id, count(*) as n_lessons
    from lessons
    group by trajectory_id
),

fates as (
    select
        trajectory_id,
        count(*) as n_lessons_read,
        count(*) filter (where in_skill) as n_lessons_in_skill
    from run_fate
    group by trajectory_id
),

tools as (
    select trajectory_id, list(distinct tool_name order by tool_name) as tools
    from steps
    where kind = 'tool_call' and tool_name is not null
    group by trajectory_id
),

final as (
    select
        r.trajectory_id,
        r.source,
        r.task_id,
        r.model,
        r.agent,
        r.outcome,
        coalesce(c.n_lessons, 0)::bigint as n_lessons,
        coalesce(f.n_lessons_read, 0)::bigint as n_lessons_read,
        coalesce(f.n_lessons_in_skill, 0)::bigint as n_lessons_in_skill,
        coalesce(f.n_lessons_in_skill, 0) > 0 as is_covered,
        case
            when coalesce(f.n_lessons_in_skill, 0) > 0 then 'covered'
            when coalesce(f.n_lessons_read, 0) > 0 then 'dropped'
            when coalesce(c.n_lessons, 0) > 0 then 'not_in_run'
            else 'no_lessons'
        end as status,
        coalesce(tl.tools, []::varchar[]) as tools
    from runs as r
    left join lesson_counts as c on c.trajectory_id = r.trajectory_id
    left join fates as f on f.trajectory_id = r.trajectory_id
    left join tools as tl on tl.trajectory_id = r.trajectory_id
)

select * from final
order by trajectory_id
