-- analyse_contrast_runs: successful runs of one task, for the agentic analyst to contrast with
-- the run it analyses (its successful_run tool).
-- grain: one row per successful trajectory of the task, shortest first.
-- inputs: trajectories.
-- parameters:
--   $source         the analysed run's source (task ids are only unique within a source)
--   $task_id        its task
--   $trajectory_id  the analysed run itself, left out
with
runs as (
    select *
    from trajectories
    where source = $source and task_id = $task_id
),

final as (
    select
        *,
        count(*) over () as n_task_runs
    from runs
    qualify outcome = 'success' and trajectory_id <> $trajectory_id
)

select * from final
order by n_steps, trajectory_id
