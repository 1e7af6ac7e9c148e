-- audit_trajectories_step_count: trajectories whose n_steps is not the number of their steps.
-- Audits: trajectories, steps.
-- Grain: one row per trajectory whose count disagrees.
-- Inputs: trajectories(trajectory_id, source, n_steps), steps(trajectory_id).
-- Parameters: none.
with counted as (
    select trajectory_id, count(*)::bigint as n_found from steps group by trajectory_id
),

final as (
    select t.source, t.trajectory_id, t.n_steps, coalesce(c.n_found, 0) as n_found
    from trajectories as t
    left join counted as c using (trajectory_id)
    where t.n_steps <> coalesce(c.n_found, 0)
)

select * from final order by source, trajectory_id
