-- audit_consolidate_unaccounted_lessons: lessons of a consolidation run that neither reached the
-- written skill (through a statement's lesson_ids) nor were dropped with a reason, and lessons
-- that were counted both ways. Nothing may vanish: any row here is a fault.
-- Grain: one row per faulty lesson.
-- Inputs: consolidation_lessons (consolidate_lesson_facts, registered by the caller);
--         run_skill_lines(lesson_ids) and run_dropped(lesson_id) of the run being checked.
-- Parameters: none.
with written as (
    select distinct unnest(lesson_ids) as lesson_id from run_skill_lines
),

dropped as (
    select lesson_id, count(*) as n from run_dropped group by lesson_id
),

final as (
    select
        f.lesson_id,
        case
            when w.lesson_id is null and d.lesson_id is null then 'neither in the skill nor dropped'
            when w.lesson_id is not null and d.lesson_id is not null then 'both in the skill and dropped'
            else 'dropped more than once'
        end as problem
    from consolidation_lessons as f
    left join written as w using (lesson_id)
    left join dropped as d using (lesson_id)
    where (w.lesson_id is null and d.lesson_id is null)
        or (w.lesson_id is not null and d.lesson_id is not null)
        or d.n > 1
)

select * from final
order by lesson_id
