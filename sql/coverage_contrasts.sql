-- coverage_contrasts: what successful runs do differently, in the sources one consolidation was
--   built from: the contrasts rows (success rate with and without each behaviour feature) of
--   every source a lesson the run read came from. Findings first, then by q_value (untested
--   features last), then by the size of the deciding difference.
-- grain: one row per source and feature, as in contrasts; decided_diff / decided_ci_low /
--   decided_ci_high are the deciding estimate (the within-task one when estimate =
--   'within_task', else the pooled one), null when it could not be measured.
-- inputs: contrasts, cluster_members, dropped, lessons, trajectories
-- parameters: $run_id
with

read_lessons as (
    select lesson_id from cluster_members where run_id = $run_id
    union
    select lesson_id from dropped where run_id = $run_id
),

run_sources as (
    select distinct t.source
    from read_lessons as r
    inner join lessons as l on l.lesson_id = r.lesson_id
    inner join trajectories as t on t.trajectory_id = l.trajectory_id
),

scoped as (
    select c.*
    from contrasts as c
    semi join run_sources as s on s.source = c.source
),

final as (
    select
        *,
        case when estimate = 'within_task' then within_diff else diff end as decided_diff,
        case when estimate = 'within_task' then within_ci_low else ci_low end as decided_ci_low,
        case when estimate = 'within_task' then within_ci_high else ci_high end as decided_ci_high
    from scoped
)

select * from final
order by
    is_finding desc,
    q_value asc nulls last,
    abs(decided_diff) desc nulls last,
    source,
    feature
