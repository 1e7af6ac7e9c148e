-- proposal_new_runs: how many of each proposed statement's runs arrived after a point in time.
-- grain: one row per edit with at least one lesson; n_new_runs counts distinct trajectories
--   behind its lessons ingested after $since.
-- inputs: edit_lessons(edit_id, lesson_ids) (registered by the caller), lessons, trajectories
-- parameters: $since
with

edit_lessons_flat as (
    select edit_id, unnest(lesson_ids) as lesson_id
    from edit_lessons
),

runs as (
    select distinct e.edit_id, l.trajectory_id
    from edit_lessons_flat as e
    inner join lessons as l using (lesson_id)
),

final as (
    select
        r.edit_id,
        count(distinct r.trajectory_id) filter (where t.ingested_at > $since)::bigint
            as n_new_runs
    from runs as r
    inner join trajectories as t using (trajectory_id)
    group by r.edit_id
)

select * from final
order by edit_id
