-- skill_versions_files: the files of one recorded skill version, to read it back or diff it.
-- grain: one row per file of the version (skill_files), in path order.
-- inputs: skill_files
-- parameters: $version_id
with

final as (
    select file, text, data, digest
    from skill_files
    where version_id = $version_id
)

select * from final
order by file
