-- stats_ingest: each raw file as of its latest ingest, with the bad records it holds.
-- Grain: one row per raw file (file_key).
-- Inputs: ingest_files (one row per file per ingest), ingest_errors.
-- Parameters: $source (varchar, null for every source).
with ingest_files as (
    select * from ingest_files
    where $source::varchar is null or source = $source::varchar
),

latest as (
    select *
    from ingest_files
    qualify row_number() over (partition by file_key order by ingested_at desc) = 1
),

errors as (
    select file, file_sha256, count(*) as errors
    from ingest_errors
    group by file, file_sha256
),

final as (
    select
        latest.source::varchar as source,
        latest.file::varchar as file,
        latest.format::varchar as format,
        latest.status::varchar as status,
        latest.n_trajectories::bigint as trajectories,
        latest.n_steps::bigint as steps,
        latest.n_skipped::bigint as skipped,
        latest.n_duplicates::bigint as duplicates,
        coalesce(errors.errors, 0)::bigint as error_rows,
        latest.size_bytes::bigint as size_bytes,
        latest.ingested_at as ingested_at
    from latest
    left join errors
        on errors.file = latest.file and errors.file_sha256 = latest.file_sha256
)

select * from final
order by source, file
