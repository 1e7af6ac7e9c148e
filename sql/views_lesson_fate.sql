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
    select
        *,
        case stage
            when 'support' then 1 when 'summary' then 2 when 'merge' then 3
            when 'apply' then 4 when 'lint' then 5 else 6
        end as stage_order
    from dropped
    qualify row_number() over (
        partition by run_id, lesson_id order by stage_order, reason, node_id
    ) = 1
),

run_lessons as (
    select run_id, lesson_id from members
    union
    select run_id, lesson_id from drops
),

final as (
    select
        rl.run_id,
        rl.lesson_id,
        l.trajectory_id,
        l.kind,
        l.title,
        l.tool_name,
        coalesce(m.cluster_id, d.cluster_id) as cluster_id,
        c.kept as cluster_kept,
        m.stage as group_stage,
        m.representative_lesson_id,
        m.similarity,
        s.lesson_id is not null as in_skill,
        coalesce(s.statements, []::varchar[]) as statements,
        d.stage as dropped_stage,
        d.reason as dropped_reason,
        d.node_id as dropped_node_id,
        case
            when s.lesson_id is not null
                and m.stage in ('exact', 'near')
                and m.representative_lesson_id <> rl.lesson_id
                then 'deduplicated'
            when s.lesson_id is not null then 'merged'
            when d.lesson_id is not null then 'dropped'
            else 'unaccounted'
        end as fate
    from run_lessons as rl
    left join members as m
        on m.run_id = rl.run_id and m.lesson_id = rl.lesson_id
    left join drops as d
        on d.run_id = rl.run_id and d.lesson_id = rl.lesson_id
    left join clusters as c
        on c.run_id = rl.run_id and c.cluster_id = coalesce(m.cluster_id, d.cluster_id)
    left join skill_lessons as s
        on s.run_id = rl.run_id and s.lesson_id = rl.lesson_id
    left join lessons as l
        on l.lesson_id = rl.lesson_id
)

select * from final;
