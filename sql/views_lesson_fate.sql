-- lesson_fate: what became of every lesson a consolidation run read.
-- grain: one row per consolidation run and lesson it read (every lesson in cluster_members or in
--   dropped for that run). fate is
--     merged         it reached a statement of the skill, itself or through its cluster (a
--                    semantic member's meaning is merged into the cluster's statement),
--     deduplicated   it reached the skill as an exact or near duplicate of
--                    representative_lesson_id, which stands for it,
--     dropped        it did not reach the skill; dropped_stage / dropped_reason say where and why
--                    (the first stage in pipeline order when it was dropped more than once),
--     unaccounted    it did not reach the skill and no drop explains it (a consolidation fault).
-- inputs: cluster_members, clusters, dropped, skill_lessons, lessons
-- parameters: none
create or replace view lesson_fate as
with

members as (
    select * from cluster_members
),

drops as (
    -- the first drop in pipeline order (then by reason) when a lesson fell out more than once
    select
        run_id,
        lesson_id,
        arg_min(
            {'stage': stage, 'reason': reason, 'node_id': node_id, 'cluster_id': cluster_id},
            {
                'stage_order': case stage
                    when 'support' then 1 when 'summary' then 2 when 'merge' then 3
                    when 'apply' then 4 when 'lint' then 5 when 'review' then 6 else 7
                end,
                'reason': reason,
                'node_id': coalesce(node_id, ''),
                'cluster_id': coalesce(cluster_id, '')
            }
        ) as first_drop
    from dropped
    group by run_id, lesson_id
),

run_lessons as (
    select
        coalesce(m.run_id, d.run_id) as run_id,
        coalesce(m.lesson_id, d.lesson_id) as lesson_id,
        m.cluster_id as member_cluster_id,
        m.stage as group_stage,
        m.representative_lesson_id,
        m.similarity,
        d.lesson_id is not null as is_dropped,
        d.first_drop
    from members as m
    full outer join drops as d
        on d.run_id = m.run_id and d.lesson_id = m.lesson_id
),

final as (
    select
        rl.run_id,
        rl.lesson_id,
        l.trajectory_id,
        l.kind,
        l.title,
        l.tool_name,
        coalesce(rl.member_cluster_id, rl.first_drop.cluster_id) as cluster_id,
        c.kept as cluster_kept,
        rl.group_stage,
        rl.representative_lesson_id,
        rl.similarity,
        s.lesson_id is not null as in_skill,
        coalesce(s.statements, []::varchar[]) as statements,
        rl.first_drop.stage as dropped_stage,
        rl.first_drop.reason as dropped_reason,
        rl.first_drop.node_id as dropped_node_id,
        case
            when s.lesson_id is not null
                and rl.group_stage in ('exact', 'near')
                and rl.representative_lesson_id <> rl.lesson_id
                then 'deduplicated'
            when s.lesson_id is not null then 'merged'
            when rl.is_dropped then 'dropped'
            else 'unaccounted'
        end as fate
    from run_lessons as rl
    left join clusters as c
        on c.run_id = rl.run_id
        and c.cluster_id = coalesce(rl.member_cluster_id, rl.first_drop.cluster_id)
    left join skill_lessons as s
        on s.run_id = rl.run_id and s.lesson_id = rl.lesson_id
    left join lessons as l
        on l.lesson_id = rl.lesson_id
)

select * from final;
