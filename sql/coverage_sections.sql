-- coverage_sections: how much evidence each section of one consolidation's skill rests on.
-- grain: one row per file and section (a null section is the text before the first heading).
--   n_trajectories counts the distinct runs behind all of the section's statements;
--   min_statement_trajectories is the weakest lesson-backed statement. is_thin: the section has
--   lesson-backed statements and fewer than $thin distinct runs behind them together.
-- inputs: skill_lines, skill_line_lessons, lesson_facts
-- parameters: $run_id, $thin
with

lines as (
    select * from skill_lines where run_id = $run_id
),

links as (
    select k.file, k.line_no, l.section, k.lesson_id
    from skill_line_lessons as k
    inner join lines as l on l.file = k.file and l.line_no = k.line_no
    where k.run_id = $run_id
),

facts as (
    select lesson_id, trajectory_id, task_id, outcome from lesson_facts
),

statement_support as (
    select k.file, k.line_no, k.section, count(distinct f.trajectory_id) as n_trajectories
    from links as k
    left join facts as f on f.lesson_id = k.lesson_id
    group by k.file, k.line_no, k.section
),

section_support as (
    select
        k.file,
        k.section,
        count(distinct k.lesson_id) as n_lessons,
        count(distinct f.trajectory_id) as n_trajectories,
        count(distinct f.task_id) as n_tasks,
        count(distinct f.trajectory_id) filter (where f.outcome = 'failure') as n_failures,
        count(distinct f.trajectory_id) filter (where f.outcome = 'success') as n_successes
    from links as k
    left join facts as f on f.lesson_id = k.lesson_id
    group by k.file, k.section
),

section_lines as (
    select
        file,
        section,
        min(line_no) as first_line,
        count(*) as n_lines,
        count(*) filter (where origin = 'base') as n_base_lines
    from lines
    group by file, section
),

weakest as (
    select file, section, count(*) as n_statements, min(n_trajectories) as min_trajectories
    from statement_support
    group by file, section
),

final as (
    select
        l.file,
        l.section,
        l.first_line,
        l.n_lines::bigint as n_lines,
        l.n_base_lines::bigint as n_base_lines,
        coalesce(w.n_statements, 0)::bigint as n_lesson_statements,
        coalesce(s.n_lessons, 0)::bigint as n_lessons,
        coalesce(s.n_trajectories, 0)::bigint as n_trajectories,
        coalesce(s.n_tasks, 0)::bigint as n_tasks,
        coalesce(s.n_failures, 0)::bigint as n_failures,
        coalesce(s.n_successes, 0)::bigint as n_successes,
        w.min_trajectories::bigint as min_statement_trajectories,
        coalesce(w.n_statements, 0) > 0 and coalesce(s.n_trajectories, 0) < $thin as is_thin
    from section_lines as l
    left join section_support as s
        on s.file = l.file and s.section is not distinct from l.section
    left join weakest as w
        on w.file = l.file and w.section is not distinct from l.section
)

select * from final
order by file, first_line
