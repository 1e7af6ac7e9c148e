-- behaviour_equivalent_features: features that split a source's runs exactly alike (the same
-- runs have them, the same runs do not), so one is measured and named for all.
-- grain: one row per source and feature.
-- inputs: run_features (the rows of behaviour_run_features.sql, registered under that name)
-- parameters: none
-- columns:
--   representative  the feature measured for this one: named features first (they say the
--                   most), then used:<family>, then before:<a>:<b>, then by name
with
signatures as (
    select
        source,
        feature,
        count(*) as n_runs,
        count(*) filter (where has_feature) as n_with,
        -- order-free digests of the run sets; equal counts and digests: the same split
        sum(hash(trajectory_id) % 1000000007) as runs_digest,
        sum(hash(trajectory_id) % 1000000007) filter (where has_feature) as with_digest,
        case
            when feature like 'used:%' then 2
            when feature like 'before:%' then 3
            else 1
        end as priority
    from run_features
    group by source, feature
),

final as (
    select
        source,
        feature,
        first(feature order by priority, feature) over (
            partition by source, n_runs, n_with, runs_digest, with_digest
        ) as representative
    from signatures
)

select * from final
order by source, feature
