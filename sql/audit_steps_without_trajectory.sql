-- audit_steps_without_trajectory: steps whose trajectory has no row in trajectories. A run's
-- steps and its row are written by the same stage; any row here is a fault.
-- Audits: steps, trajectories.
-- Grain: one row per (source, trajectory_id) of the orphaned steps.
-- Inputs: steps(source, trajectory_id), trajectories(trajectory_id).
-- Parameters: none.
with final as (
    select s.source, s.trajectory_id, count(*)::bigint as n_steps
    from steps as s
    anti join trajectories as t using (trajectory_id)
    group by all
)

select * from final order by source, trajectory_id
