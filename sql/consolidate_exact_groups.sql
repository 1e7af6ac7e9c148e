-- consolidate_exact_groups: normalised exact duplicates. Lessons of one block with the same
-- normalised title are one group; its representative is the most confident member (then the
-- smallest lesson_id), so the choice does not depend on row order.
-- Grain: one row per lesson.
-- Inputs: consolidation_lessons (consolidate_lesson_facts, registered by the caller).
-- Parameters: none.
-- Columns: lesson_id, exact_rep_id (itself for representatives), n_exact (group size).
with facts as (
    select lesson_id, block, norm_title, confidence from consolidation_lessons
),

ranked as (
    select
        lesson_id,
        first(lesson_id order by confidence desc, lesson_id)
            over (partition by block, norm_title) as exact_rep_id,
        count(*) over (partition by block, norm_title) as n_exact
    from facts
),

final as (
    select lesson_id, exact_rep_id, n_exact::bigint as n_exact from ranked
)

select * from final
order by lesson_id
