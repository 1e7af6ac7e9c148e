-- skill_lines_support: the lessons and evidence behind each statement written into the skill.
-- A statement stands on one or more clusters (more when the merge tree joined duplicates or kept
-- a tied conflict as one conditional statement); its support is counted over the union of their
-- member lessons, so a run behind two of its clusters counts once.
-- Grain: one row per statement (item_id).
-- Inputs: item_clusters(item_id, cluster_id); cluster_lessons(lesson_id, cluster_id);
--         consolidation_lessons (consolidate_lesson_facts, registered by the caller).
-- Parameters: none.
with members as (
    select i.item_id, f.lesson_id, f.trajectory_id, f.task_id, f.outcome
    from item_clusters as i
    join cluster_lessons as c using (cluster_id)
    join consolidation_lessons as f using (lesson_id)
),

final as (
    select
        item_id,
        list(distinct lesson_id order by lesson_id) as lesson_ids,
        count(distinct trajectory_id)::bigint as n_trajectories,
        count(distinct task_id)::bigint as n_tasks,
        (count(distinct trajectory_id) filter (where outcome = 'failure'))::bigint as n_failures,
        (count(distinct trajectory_id) filter (where outcome = 'success'))::bigint as n_successes
    from members
    group by item_id
)

select * from final
order by item_id
