-- skill_diff_overlaps: statement pairs of two skill versions that rest on overlapping lessons.
-- grain: one row per (statement of A, statement of B) sharing at least one lesson, with the
--   Jaccard similarity of their lesson sets; pairs below $min_jaccard are left out. The diff
--   takes them best first, each statement in one pair at most.
-- inputs: a_statements(statement_key, lesson_ids), b_statements(statement_key, lesson_ids)
--   (skill_diff_statements of each version, registered by the caller)
-- parameters: $min_jaccard
with

a_lessons as (
    select statement_key, unnest(list_distinct(lesson_ids)) as lesson_id,
        len(list_distinct(lesson_ids)) as n_lessons
    from a_statements
),

b_lessons as (
    select statement_key, unnest(list_distinct(lesson_ids)) as lesson_id,
        len(list_distinct(lesson_ids)) as n_lessons
    from b_statements
),

shared as (
    select
        a.statement_key as a_key,
        b.statement_key as b_key,
        count(*)::bigint as n_shared,
        any_value(a.n_lessons) as a_lessons,
        any_value(b.n_lessons) as b_lessons
    from a_lessons as a
    inner join b_lessons as b using (lesson_id)
    group by a.statement_key, b.statement_key
),

final as (
    select
        a_key,
        b_key,
        n_shared,
        n_shared / (a_lessons + b_lessons - n_shared) as jaccard
    from shared
    where n_shared / (a_lessons + b_lessons - n_shared) >= $min_jaccard
)

select * from final
order by jaccard desc, a_key, b_key
