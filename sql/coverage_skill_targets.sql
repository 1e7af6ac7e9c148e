-- coverage_skill_targets: the lessons one consolidation's skill stands on, as drift compares new
--   lessons with them: the distinct titles of the members of every kept cluster that reached a
--   statement, each with the cluster's block (target section and polarity).
-- grain: one row per kept cluster listed by at least one skill line and distinct (block, title)
--   of its members: the $max_titles most frequent titles of the cluster (then by title).
-- inputs: clusters, cluster_members, skill_lines, lesson_keys (lesson_id, block, title: the keys
--   consolidation blocks and compares lessons on, from sql/consolidate_lesson_facts.sql)
-- parameters: $run_id, $max_titles
with

line_clusters as (
    select file, line_no, unnest(cluster_ids) as cluster_id
    from skill_lines
    where run_id = $run_id
),

statements as (
    select cluster_id, list(file || ':' || line_no order by file, line_no) as statements
    from line_clusters
    group by cluster_id
),

kept as (
    select c.cluster_id, c.kind, c.target_section, c.title, c.content, c.n_trajectories
    from clusters as c
    semi join statements as s on s.cluster_id = c.cluster_id
    where c.run_id = $run_id and c.kept
),

member_titles as (
    select m.cluster_id, k.block, k.title, count(*) as n_lessons
    from cluster_members as m
    inner join lesson_keys as k on k.lesson_id = m.lesson_id
    semi join kept as c on c.cluster_id = m.cluster_id
    where m.run_id = $run_id
    group by m.cluster_id, k.block, k.title
    qualify row_number() over (
        partition by m.cluster_id order by count(*) desc, k.title, k.block
    ) <= $max_titles
),

final as (
    select
        c.cluster_id,
        c.kind,
        c.target_section,
        t.block,
        c.title as cluster_title,
        t.title,
        t.n_lessons::bigint as n_lessons,
        c.n_trajectories,
        s.statements
    from kept as c
    inner join member_titles as t on t.cluster_id = c.cluster_id
    inner join statements as s on s.cluster_id = c.cluster_id
)

select * from final
order by cluster_id, n_lessons desc, title, block
