-- lessons_per_tool: for every tool, how often it was called and failed, how many lessons are
--   about it, and how many of those reached the newest skill.
-- grain: one row per source and tool named by a tool call or a lesson ('(none)' for lessons
--   about no tool), over the sources the newest consolidation read.
-- inputs: tool_calls, lesson_facts, latest_lesson_fate, trajectories
-- parameters: none
with

scope as (
    select distinct t.source
    from latest_lesson_fate as f
    inner join trajectories as t on t.trajectory_id = f.trajectory_id
),

calls as (
    select
        c.source,
        c.tool_name,
        count(*) as n_calls,
        count(*) filter (where c.is_error) as n_errors,
        count(distinct c.trajectory_id) as n_runs
    from tool_calls as c
    semi join scope as s on s.source = c.source
    group by c.source, c.tool_name
),

lessons as (
    select
        f.source,
        coalesce(f.tool_name, '(none)') as tool_name,
        count(*) as n_lessons,
        count(*) filter (where f.kind in ('failure_cause', 'failure_lesson')) as n_failure_lessons,
        count(*) filter (where f.kind in ('success_lesson', 'workflow')) as n_success_lessons,
        count(distinct f.trajectory_id) as n_lesson_runs,
        count(*) filter (where x.fate in ('merged', 'deduplicated')) as n_in_skill
    from lesson_facts as f
    semi join scope as s on s.source = f.source
    left join latest_lesson_fate as x on x.lesson_id = f.lesson_id
    group by f.source, coalesce(f.tool_name, '(none)')
),

final as (
    select
        coalesce(l.source, c.source) as source,
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
    full outer join calls as c on c.source = l.source and c.tool_name = l.tool_name
)

select * from final
order by n_lessons desc, n_calls desc, source, tool_name
