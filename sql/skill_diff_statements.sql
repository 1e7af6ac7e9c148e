-- skill_diff_statements: the statements of the skill one consolidation run wrote, with evidence.
-- grain: one row per statement: the lines sharing an item_id (a SKILL.md bullet, its entry in
--   references/ and the entry's evidence line) count once, shown by their first line in SKILL.md
--   (else their first line); a line without an item (a base-skill line) stands alone. Every line
--   of an item rests on the same lessons, so the first line's support is the statement's.
-- inputs: skill_lines
-- parameters: $run_id
with

lines as (
    select
        *,
        coalesce(item_id, file || ':' || line_no) as statement_key,
        case when file = 'SKILL.md' then 0 else 1 end as file_rank
    from skill_lines
    where run_id = $run_id
),

ranked as (
    select
        *,
        row_number() over (
            partition by statement_key order by file_rank, file, line_no
        ) as rank_in_statement,
        count(*) over (partition by statement_key) as n_lines
    from lines
),

final as (
    select
        statement_key,
        item_id,
        file,
        line_no,
        section,
        text,
        origin,
        lesson_ids,
        n_trajectories,
        n_tasks,
        n_failures,
        n_successes,
        n_lines::bigint as n_lines
    from ranked
    where rank_in_statement = 1
)

select * from final
order by file, line_no
