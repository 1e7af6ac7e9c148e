-- coverage_new_trajectories: the runs kept out of the skill (a held-out split or a new batch).
-- grain: one row per held-out trajectory, with how many lessons analysis found in it.
-- inputs: trajectories, lessons, held_out (trajectory_id of the held-out runs)
-- parameters: none
with

runs as (
    select t.*
    from trajectories as t
    semi join held_out as h on h.trajectory_id = t.trajectory_id
),

lesson_counts as (
    select trajectory_id, count(*) as n_lessons
    from lessons
    group by trajectory_id
),

final as (
    select
        r.trajectory_id,
        r.source,
        r.task_id,
        r.model,
        r.outcome,
        coalesce(c.n_lessons, 0)::bigint as n_lessons
    from runs as r
    left join lesson_counts as c on c.trajectory_id = r.trajectory_id
)

select * from final
order by trajectory_id
