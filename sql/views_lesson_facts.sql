-- lesson_facts: every lesson with the facts of the run it was drawn from.
-- grain: one row per lesson. `model` is the agent's model (from trajectories); the model that
--   wrote the lesson is `analyst_model`. Trajectory columns are null for a lesson whose
--   trajectory is not in the lake.
-- inputs: lessons, trajectories
-- parameters: none
create or replace view lesson_facts as
with

lessons_ as (
    select * from lessons
),

trajectories_ as (
    select * from trajectories
),

final as (
    select
        l.lesson_id,
        l.trajectory_id,
        l.kind,
        l.title,
        l.content,
        l.target_section,
        l.op,
        l.tool_name,
        l.rule,
        l.evidence_steps,
        l.confidence,
        l.analyst,
        l.model as analyst_model,
        t.source,
        t.task_id,
        t.model,
        t.agent,
        t.outcome,
        t.reward
    from lessons_ as l
    left join trajectories_ as t
        on t.trajectory_id = l.trajectory_id
)

select * from final;
