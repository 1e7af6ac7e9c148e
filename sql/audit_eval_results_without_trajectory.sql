-- audit_eval_results_without_trajectory: episodes whose result names a trajectory the lake does
-- not hold. A batch's trajectories part is written before its results part; any row here is a
-- fault.
-- Audits: eval_results, trajectories.
-- Grain: one row per episode result.
-- Inputs: eval_results(eval_id, arm_id, task_id, trajectory_id), trajectories(trajectory_id).
-- Parameters: none.
with final as (
    select r.eval_id, r.arm_id, r.task_id, r.trajectory_id
    from eval_results as r
    anti join trajectories as t using (trajectory_id)
)

select * from final order by eval_id, arm_id, task_id
