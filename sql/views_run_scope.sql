-- run_trajectories: the runs each consolidation was built from (its scope): coverage counts these.
-- grain: one row per consolidation run and trajectory in its scope, as the run recorded it in
--   consolidation_scope; for runs consolidated before scopes were recorded, found from the lake
--   as it is now (`legacy`, one select per such run, written when the view is defined:
--   pipeline/report/views.py `scope_branches`). scope says how (pipeline/scope.py): where (its
--   --where selects the run), sources (its --where names lesson columns: every run of the
--   sources it read), lake (no --where: every run of the lake).
-- inputs: consolidation_scope, trajectories, consolidations, cluster_members, dropped, lessons,
--   latest_run (views_latest)
-- parameters: none
create or replace view run_trajectories as
with

facts as (
    select
        trajectory_id,
        source,
        task_id,
        outcome,
        model,
        model as run_model,
        agent,
        reward
    from trajectories
),

read_lessons as (
    select run_id, lesson_id from cluster_members
    union
    select run_id, lesson_id from dropped
),

sources_read as (
    select distinct r.run_id, t.source
    from read_lessons as r
    inner join lessons as l on l.lesson_id = r.lesson_id
    inner join trajectories as t on t.trajectory_id = l.trajectory_id
),

legacy as (
{branches}
),

scoped as (
    select run_id, trajectory_id, scope from consolidation_scope
    union all
    select run_id, trajectory_id, scope from legacy
),

final as (
    select run_id, trajectory_id, scope from scoped
)

select * from final;

create or replace view latest_run_trajectories as
select * from run_trajectories where run_id = (select run_id from latest_run);
