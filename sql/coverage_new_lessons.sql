-- coverage_new_lessons: the lessons of the runs kept out of the skill (a held-out split or a new
--   batch), to be matched against the skill.
-- grain: one row per lesson of a held-out trajectory, with its block (target section and
--   polarity, as consolidation compares lessons).
-- inputs: lesson_facts, held_out (trajectory_id of the held-out runs), lesson_keys (lesson_id,
--   block: from sql/consolidate_lesson_facts.sql)
-- parameters: none
with

facts as (
    select * from lesson_facts
),

final as (
    select
        f.lesson_id,
        f.trajectory_id,
        f.kind,
        f.title,
        f.content,
        f.tool_name,
        f.source,
        f.task_id,
        f.model,
        f.outcome,
        k.block
    from facts as f
    left join lesson_keys as k on k.lesson_id = f.lesson_id
    semi join held_out as h on h.trajectory_id = f.trajectory_id
)

select * from final
order by lesson_id
