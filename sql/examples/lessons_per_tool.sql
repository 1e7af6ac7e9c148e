-- lessons_per_tool: for every tool, how often it was called and failed, how many lessons are
--   about it, and how many of those reached the newest skill.
-- grain: one row per tool named by a tool call or a lesson ('(none)' for lessons about no tool).
-- inputs: tool_calls, lesson_facts, latest_skill_lessons
-- parameters: none
with

calls as (
    select
        tool_name,
        count(*) as n_calls,
        count(*) filter (where is_error) as n_errors,
        count(distinct trajectory_id) as n_runs
    from tool_calls
    group by tool_name
),

lessons as (
    select
        coalesce(f.tool_name, '(none)') as tool_name,
        count(*) as n_lessons,
        count(*) filter (where f.kind in ('failure_cause', 'failure_lesson')) as n_failure_lessons,
        count(*) filter (where f.kind in ('success_lesson', 'workflow')) as n_success_lessons,
        count(distinct f.trajectory_id) as n_lesson_runs,
        count(s.lesson_id) as n_in_skill
    from lesson_facts as f
    left join latest_skill_lessons as s on s.lesson_id = f.lesson_id
    group by coalesce(f.tool_name, '(none)')
),

final as (
    select
        coalesce(l.tool_name, c.tool_name) as tool_name,
        coalesce(c.n_calls, 0)::bigint as n_calls,
        coalesce(c.n_errors, 0)::bigint as n_errors,
        coalesce(c.n_runs, 0)::bigint as n_runs_calling,
        coalesce(l.n_lessons, 0)::bigint as n_lessons,
        coalesce(l.n_failure_lessons, 0)::bigint as n_failure_lessons,
        coalesce(l.n_success_lessons, 0)::bigint as n_success_lessons,
        coalesce(l.n_lesson_runs, 0)::bigint as n_lesson_runs,
        coalesce(l.n_in_skill, 0)::bigint as n_in_skill
    from lessons as l
    full outer join calls as c on c.tool_name = l.tool_name
)

select * from final
order by n_lessons desc, n_calls desc, tool_name
