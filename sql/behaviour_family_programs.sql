-- behaviour_family_programs: the programs seen in each family, most used first, for wording.
-- grain: one row per source, family and program.
-- inputs: actions
-- parameters: none
-- columns:
--   is_tool  the family is a tool of its own (not a family of commands or editor operations)
with
final as (
    select
        source,
        family,
        program,
        bool_and(program = family and tool_name = family) as is_tool,
        count(*)::bigint as n_actions,
        count(distinct trajectory_id)::bigint as n_runs
    from actions
    group by all
)

select * from final
order by source, family, n_actions desc, program
