-- stats_tools: every tool's calls, errors and error rate.
-- Grain: one row per source and tool_name.
-- Inputs: steps (a tool_result carries the name of the tool that answered).
-- Parameters: $source (varchar, null for every source).
with steps as (
    select * from steps
    where $source::varchar is null or source = $source::varchar
),

calls as (
    select source, tool_name, count(*) as calls, count(distinct trajectory_id) as trajectories
    from steps
    where kind = 'tool_call'
    group by source, tool_name
),

results as (
    select source, tool_name, count(*) as results, count(*) filter (where is_error) as errors
    from steps
    where kind = 'tool_result'
    group by source, tool_name
),

final as (
    select
        source::varchar as source,
        tool_name::varchar as tool_name,
        coalesce(calls.calls, 0)::bigint as calls,
        coalesce(calls.trajectories, 0)::bigint as trajectories,
        coalesce(results.results, 0)::bigint as results,
        coalesce(results.errors, 0)::bigint as errors,
        round(results.errors / nullif(results.results, 0), 4)::double as error_rate
    from calls
    full join results using (source, tool_name)
)

select * from final
order by source, calls desc, tool_name nulls last
