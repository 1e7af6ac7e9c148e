-- trajectories_since: how many runs were ingested after a point in time.
-- grain: one row, the count.
-- inputs: trajectories
-- parameters: $since
with

final as (
    select count(*)::bigint as n_runs
    from trajectories
    where ingested_at > $since
)

select * from final
