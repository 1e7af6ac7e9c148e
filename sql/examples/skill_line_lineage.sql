-- skill_line_lineage: the evidence behind one statement of the newest skill, back to the runs.
-- grain: one row per lesson behind the statement at $file:$line_no: the statement, the merge node
--   that emitted it, the cluster the lesson sits in, how it joined that cluster, the lesson, and
--   the run, and the steps the lesson cites as evidence: evidence_steps, and evidence with each
--   step as '[step] kind tool (error): the first 80 characters of its text or arguments'.
-- inputs: latest_skill_lines, latest_skill_line_lessons, latest_cluster_members, latest_clusters,
--   lesson_facts, lessons, steps
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

cited as (
    select l.lesson_id, l.trajectory_id, unnest(l.evidence_steps) as step_idx
    from lessons as l
    semi join links as k on k.lesson_id = l.lesson_id
),

evidence as (
    select
        c.lesson_id,
        list(
            '[' || c.step_idx || '] '
            || case
                when st.step_idx is null then '(not in the run)'
                else st.kind
                    || coalesce(' ' || st.tool_name, '')
                    || case when st.is_error then ' (error)' else '' end
                    || ': '
                    || left(
                        regexp_replace(
                            coalesce(nullif(trim(st.content), ''), st.tool_args, ''), '\s+', ' ', 'g'
                        ),
                        80
                    )
            end
            order by c.step_idx
        ) as evidence
    from cited as c
    left join steps as st
        on st.trajectory_id = c.trajectory_id and st.step_idx = c.step_idx
    group by c.lesson_id
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
        f.evidence_steps,
        coalesce(e.evidence, []::varchar[]) as evidence
    from links as k
    inner join statement as s on true
    left join latest_cluster_members as m on m.lesson_id = k.lesson_id
    left join latest_clusters as c on c.cluster_id = m.cluster_id
    left join lesson_facts as f on f.lesson_id = k.lesson_id
    left join evidence as e on e.lesson_id = k.lesson_id
)

select * from final
order by trajectory_id, lesson_id
