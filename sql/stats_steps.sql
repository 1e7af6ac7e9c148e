-- stats_steps: the mix of steps by role and kind.
-- Grain: one row per source, role and kind.
-- Inputs: steps.
-- Parameters: $source (varchar, null for every source).
with steps as (
    select * from steps
    where $source::varchar is null or source = $source::varchar
),

final as (
    select
        source::varchar as source,
        role::varchar as role,
        kind::varchar as kind,
        count(*)::bigint as steps,
        count(*) filter (where is_error)::bigint as errors,
        round(avg(content_chars), 0)::bigint as mean_chars
    from steps
    group by source, role, kind
)

select * from final
order by source, role, kind
