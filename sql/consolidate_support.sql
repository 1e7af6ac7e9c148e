-- consolidate_support: evidence behind each cluster, and whether it passes the support filter.
-- Support counts distinct trajectories (not lessons: one run restating a lesson five times is
-- still one piece of evidence), and the tasks, failed and successful runs, agent models and
-- analysts among them. The descriptive columns take the members' most frequent value (ties:
-- the smallest value, so the result does not depend on row order).
-- Grain: one row per cluster.
-- Inputs: cluster_lessons(lesson_id, cluster_id); consolidation_lessons
--         (consolidate_lesson_facts, registered by the caller).
-- Parameters: $min_support (distinct trajectories a cluster needs to be kept).
with members as (
    select c.cluster_id, f.*
    from cluster_lessons as c
    join consolidation_lessons as f using (lesson_id)
),

support as (
    select
        cluster_id,
        count(*) as n_lessons,
        count(distinct trajectory_id) as n_trajectories,
        count(distinct task_id) as n_tasks,
        count(distinct trajectory_id) filter (where outcome = 'failure') as n_failures,
        count(distinct trajectory_id) filter (where outcome = 'success') as n_successes,
        count(distinct run_model) as n_models,
        count(distinct analyst) as n_analysts
    from members
    group by cluster_id
),

sections as (
    select cluster_id, first(section order by n desc, section) as target_section
    from (select cluster_id, section, count(*) as n from members group by all)
    group by cluster_id
),

kinds as (
    select cluster_id, first(kind order by n desc, kind) as kind
    from (select cluster_id, kind, count(*) as n from members group by all)
    group by cluster_id
),

ops as (
    select cluster_id, first(op order by n desc, op) as op
    from (select cluster_id, op, count(*) as n from members group by all)
    group by cluster_id
),

tools as (
    select cluster_id, first(tool_name order by n desc, tool_name) as tool_name
    from (select cluster_id, tool_name, count(*) as n from members where tool_name is not null group by all)
    group by cluster_id
),

rules as (
    select cluster_id, first(rule order by n desc, rule) as rule
    from (select cluster_id, rule, count(*) as n from members where rule is not null group by all)
    group by cluster_id
),

final as (
    select
        s.cluster_id,
        sec.target_section,
        k.kind,
        o.op,
        t.tool_name,
        r.rule,
        s.n_lessons::bigint as n_lessons,
        s.n_trajectories::bigint as n_trajectories,
        s.n_tasks::bigint as n_tasks,
        s.n_failures::bigint as n_failures,
        s.n_successes::bigint as n_successes,
        s.n_models::bigint as n_models,
        s.n_analysts::bigint as n_analysts,
        s.n_trajectories >= $min_support as kept
    from support as s
    join sections as sec using (cluster_id)
    join kinds as k using (cluster_id)
    join ops as o using (cluster_id)
    left join tools as t using (cluster_id)
    left join rules as r using (cluster_id)
)

select * from final
order by cluster_id
