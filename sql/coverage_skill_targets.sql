-- coverage_skill_targets: the consolidated lessons that reached one consolidation's skill; new
--   lessons are matched against these to measure drift.
-- grain: one row per kept cluster listed by at least one skill line, with the statements
--   (file:line) it reached.
-- inputs: clusters, skill_lines
-- parameters: $run_id
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

final as (
    select
        c.cluster_id,
        c.kind,
        c.target_section,
        c.title,
        c.content,
        c.n_trajectories,
        s.statements
    from clusters as c
    inner join statements as s on s.cluster_id = c.cluster_id
    where c.run_id = $run_id and c.kept
)

select * from final
order by cluster_id
