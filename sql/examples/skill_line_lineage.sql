-- skill_line_lineage: the evidence behind one statement of the newest skill, back to the runs.
-- grain: one row per lesson behind the statement at $file:$line_no: the statement, the merge node
--   that emitted it, the cluster the lesson sits in, how it joined that cluster, the lesson, and
--   the run (with the steps the lesson cites as evidence).
-- inputs: latest_skill_lines, latest_skill_line_lessons, latest_cluster_members, latest_clusters,
--   lesson_facts
-- parameters: $file (e.g. 'SKILL.md'), $line_no (1-based)
with

statement as (
    select * from latest_skill_lines where file = $file and line_no = $line_no
),

links as (
    select k.*
    from latest_skill_line_lessons as k
    inner join statement as s on s.file = k.file and s.line_no = k.line_no
),

final as (
    select
        s.file,
        s.line_no,
        s.text,
        s.merge_node_id,
        m.cluster_id,
        c.title as cluster_title,
        m.stage as joined_by,
        m.similarity,
        k.via_statement,
        k.via_cluster,
        k.lesson_id,
        f.kind,
        f.title as lesson_title,
        f.trajectory_id,
        f.source,
        f.task_id,
        f.model,
        f.outcome,
        f.evidence_steps
    from links as k
    inner join statement as s on true
    left join latest_cluster_members as m on m.lesson_id = k.lesson_id
    left join latest_clusters as c on c.cluster_id = m.cluster_id
    left join lesson_facts as f on f.lesson_id = k.lesson_id
)

select * from final
order by trajectory_id, lesson_id
