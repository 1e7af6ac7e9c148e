-- skill_run_lines: every line of the skill one consolidation (or review) run wrote, keyed by
--   the statement it belongs to.
-- grain: one row per skill_lines row of the run; statement_key is the item (a SKILL.md bullet,
--   its entry in references/ and the entry's evidence line share one), else file:line for a
--   line that stands alone (a base-skill line). skill_diff_statements shows one line per key.
-- inputs: skill_lines
-- parameters: $run_id
with

lines as (
    select * exclude (run_id)
    from skill_lines
    where run_id = $run_id
),

final as (
    select
        coalesce(item_id, file || ':' || line_no) as statement_key,
        *
    from lines
)

select * from final
order by file, line_no
