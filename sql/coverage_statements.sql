-- coverage_statements: the evidence behind every statement of one consolidation's skill.
-- grain: one row per skill line (file, line_no); item_id groups the lines of one consolidated
--   statement (its SKILL.md bullet, its entry in references/ and the entry's evidence line).
--   Support is recounted from the lessons behind the
--   statement (skill_line_lessons) and the runs they came from; stored_n_trajectories is what
--   the consolidation wrote, for comparison. evidence:
--     lessons   at least one lesson stands behind it
--     base      a line of the base skill (human-written, no lessons expected)
--     heading   an added heading (structure, no lessons expected)
--     none      an added or revised statement with no lesson behind it (a provenance gap)
--   is_thin: evidence = 'lessons' and fewer than $thin distinct runs behind it.
-- inputs: skill_lines, skill_line_lessons, lesson_facts
-- parameters: $run_id, $thin
with

lines as (
    select * from skill_lines where run_id = $run_id
),

links as (
    select * from skill_line_lessons where run_id = $run_id
),

facts as (
    select lesson_id, trajectory_id, task_id, source, model, outcome from lesson_facts
),

support as (
    select
        k.file,
        k.line_no,
        count(distinct k.lesson_id) as n_lessons,
        count(distinct f.trajectory_id) as n_trajectories,
        count(distinct f.task_id) as n_tasks,
        count(distinct f.trajectory_id) filter (where f.outcome = 'failure') as n_failures,
        count(distinct f.trajectory_id) filter (where f.outcome = 'success') as n_successes,
        count(distinct f.source) as n_sources,
        count(distinct f.model) as n_models
    from links as k
    left join facts as f on f.lesson_id = k.lesson_id
    group by k.file, k.line_no
),

final as (
    select
        l.file,
        l.line_no,
        l.section,
        l.origin,
        l.item_id,
        l.text,
        case
            when l.origin = 'base' then 'base'
            when coalesce(s.n_lessons, 0) > 0 then 'lessons'
            when ltrim(l.text) like '#%' then 'heading'
            else 'none'
        end as evidence,
        coalesce(s.n_lessons, 0)::bigint as n_lessons,
        coalesce(s.n_trajectories, 0)::bigint as n_trajectories,
        coalesce(s.n_tasks, 0)::bigint as n_tasks,
        coalesce(s.n_failures, 0)::bigint as n_failures,
        coalesce(s.n_successes, 0)::bigint as n_successes,
        coalesce(s.n_sources, 0)::bigint as n_sources,
        coalesce(s.n_models, 0)::bigint as n_models,
        l.n_trajectories as stored_n_trajectories,
        coalesce(s.n_lessons, 0) > 0 and coalesce(s.n_trajectories, 0) < $thin as is_thin
    from lines as l
    left join support as s on s.file = l.file and s.line_no = l.line_no
)

select * from final
order by file, line_no
