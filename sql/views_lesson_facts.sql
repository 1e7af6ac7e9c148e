-- lesson_facts: every lesson with the facts of the run it was drawn from and of its analysis.
-- grain: one row per lesson. `model` is the agent's model (from trajectories); the model that
--   wrote the lesson is `analyst_model`. Trajectory columns are null for a lesson whose
--   trajectory is not in the lake. Consolidation reads this view (sql/consolidate_lesson_facts.sql).
-- inputs: lessons, trajectories, analyses
-- parameters: none
-- columns beyond the lesson's and the run's:
--   section        target section with spaces collapsed (null when blank)
--   config_id      the analyst configuration that wrote the lesson (null without its ok
--                  analysis row)
--   latest_config  the lesson comes from the latest successful analysis of its trajectory by
--                  its analyst (by finished_at, then config_id), or has no analysis row: when an
--                  analyst re-analysed a run under new settings (say with a base skill, or
--                  another model), its latest configuration's lessons replace the earlier ones;
--                  different analysts (the miner and a model) add up
create or replace view lesson_facts as
with

lessons_ as (
    select * from lessons
),

trajectories_ as (
    select * from trajectories
),

analyses_ok as (
    select analysis_id, config_id, trajectory_id, analyst, finished_at
    from analyses
    where status = 'ok'
),

latest_analysis as (
    select
        trajectory_id,
        analyst,
        first(config_id order by finished_at desc, config_id desc) as config_id
    from analyses_ok
    group by trajectory_id, analyst
),

final as (
    select
        l.lesson_id,
        l.trajectory_id,
        l.kind,
        l.title,
        l.content,
        l.target_section,
        nullif(trim(regexp_replace(l.target_section, '\s+', ' ', 'g')), '') as section,
        l.op,
        l.tool_name,
        l.rule,
        l.evidence_steps,
        l.confidence,
        l.analyst,
        l.model as analyst_model,
        l.created_at,
        a.config_id,
        a.config_id is null or a.config_id = la.config_id as latest_config,
        t.source,
        t.task_id,
        t.model,
        t.agent,
        t.outcome,
        t.reward
    from lessons_ as l
    left join trajectories_ as t
        on t.trajectory_id = l.trajectory_id
    left join analyses_ok as a
        on a.analysis_id = l.analysis_id
    left join latest_analysis as la
        on la.trajectory_id = l.trajectory_id and la.analyst = l.analyst
)

select * from final;
