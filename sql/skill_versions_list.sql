-- skill_versions_list: every recorded version of a skill folder, newest first.
-- grain: one row per version (skill_versions), with its parent's run and time beside it.
-- inputs: skill_versions
-- parameters: none
with

versions as (
    select * from skill_versions
),

final as (
    select
        v.version_id,
        v.parent_version_id,
        v.run_id,
        v.skill_name,
        v.out,
        v.created_at,
        v.created_by,
        v.n_statements,
        v.n_files,
        p.run_id as parent_run_id,
        p.created_at as parent_created_at
    from versions as v
    left join versions as p on p.version_id = v.parent_version_id
)

select * from final
order by created_at desc, version_id
