-- top_failure_clusters: the clusters of the newest consolidation that gather the most failed
--   runs, and whether each reached the skill.
-- grain: one row per cluster of the newest run with at least one lesson from a failed run; the
--   20 with the most distinct failed runs. Counts are recounted from the members' runs.
-- inputs: latest_clusters, latest_cluster_members, latest_skill_lessons, lesson_facts
-- parameters: none
with

clusters as (
    select * from latest_clusters
),

members as (
    select m.cluster_id, m.lesson_id, f.trajectory_id, f.task_id, f.outcome
    from latest_cluster_members as m
    left join lesson_facts as f on f.lesson_id = m.lesson_id
),

in_skill as (
    select lesson_id from latest_skill_lessons
),

counts as (
    select
        m.cluster_id,
        count(distinct m.trajectory_id) filter (where m.outcome = 'failure') as n_failed_runs,
        count(distinct m.task_id) filter (where m.outcome = 'failure') as n_failed_tasks,
        count(distinct m.trajectory_id) as n_runs,
        count(*) as n_lessons,
        count(s.lesson_id) > 0 as in_skill
    from members as m
    left join in_skill as s on s.lesson_id = m.lesson_id
    group by m.cluster_id
),

final as (
    select
        c.cluster_id,
        c.title,
        c.kind,
        c.target_section,
        n.n_failed_runs::bigint as n_failed_runs,
        n.n_failed_tasks::bigint as n_failed_tasks,
        n.n_runs::bigint as n_runs,
        n.n_lessons::bigint as n_lessons,
        c.kept,
        n.in_skill
    from clusters as c
    inner join counts as n on n.cluster_id = c.cluster_id
    where n.n_failed_runs > 0
)

select * from final
order by n_failed_runs desc, n_lessons desc, cluster_id
limit 20
