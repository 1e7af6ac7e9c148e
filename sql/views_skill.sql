-- skill_line_lessons: which lessons stand behind which statement of a written skill.
-- grain: one row per consolidation run, skill statement and lesson behind it. A lesson stands
--   behind a statement when the statement lists it in lesson_ids (via_statement) or when it is a
--   member of a kept cluster the statement lists in cluster_ids (via_cluster); both can hold.
-- inputs: skill_lines, clusters, cluster_members
-- parameters: none
create or replace view skill_line_lessons as
with

lines as (
    select run_id, file, line_no, cluster_ids, lesson_ids from skill_lines
),

direct as (
    select run_id, file, line_no, unnest(lesson_ids) as lesson_id from lines
),

line_clusters as (
    select run_id, file, line_no, unnest(cluster_ids) as cluster_id from lines
),

via_cluster as (
    select lc.run_id, lc.file, lc.line_no, m.lesson_id
    from line_clusters as lc
    inner join clusters as c
        on c.run_id = lc.run_id and c.cluster_id = lc.cluster_id and c.kept
    inner join cluster_members as m
        on m.run_id = lc.run_id and m.cluster_id = lc.cluster_id
),

links as (
    select run_id, file, line_no, lesson_id, true as via_statement, false as via_cluster
    from direct
    union all
    select run_id, file, line_no, lesson_id, false as via_statement, true as via_cluster
    from via_cluster
),

final as (
    select
        run_id,
        file,
        line_no,
        lesson_id,
        bool_or(via_statement) as via_statement,
        bool_or(via_cluster) as via_cluster
    from links
    group by run_id, file, line_no, lesson_id
)

select * from final;

-- skill_lessons: the lessons that reached a written skill.
-- grain: one row per consolidation run and lesson in its skill, with the statements it reached.
-- inputs: skill_line_lessons
-- parameters: none
create or replace view skill_lessons as
with

links as (
    select * from skill_line_lessons
),

final as (
    select
        run_id,
        lesson_id,
        count(*)::bigint as n_statements,
        list(file || ':' || line_no order by file, line_no) as statements,
        bool_or(via_statement) as via_statement,
        bool_or(via_cluster) as via_cluster
    from links
    group by run_id, lesson_id
)

select * from final;
