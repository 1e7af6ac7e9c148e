-- calls_by_stage_model: what the model calls of a lake cost, and how they went.
-- grain: one row per (stage, model, kind) found in llm_calls, plus one total row
--        (is_total = true, stage/model/kind null).
-- inputs: llm_calls (one row per request answered: by the server, from the cache, or an error)
-- parameters: $stage, $model (varchar; null = every stage / model)
-- notes: latency percentiles are over requests that went to the server (cache hits and
--        requests stopped by a budget are excluded); tokens and cost are zero on cache hits.
with calls as (
    select *
    from llm_calls
    where ($stage::varchar is null or stage = $stage::varchar)
      and ($model::varchar is null or model = $model::varchar)
),

final as (
    select
        grouping(stage, model, kind) > 0 as is_total,
        stage,
        model,
        kind,
        count(*)::bigint as requests,
        count(*) filter (where not cache_hit and attempts > 0)::bigint as server_requests,
        count(*) filter (where cache_hit)::bigint as cache_hits,
        count(*) filter (where error is not null)::bigint as errors,
        coalesce(sum(attempts), 0)::bigint as attempts,
        coalesce(sum(tokens_in), 0)::bigint as tokens_in,
        coalesce(sum(tokens_out), 0)::bigint as tokens_out,
        round(coalesce(sum(cost_usd), 0), 8)::double as cost_usd,
        round(count(*) filter (where cache_hit) / count(*), 4)::double as hit_rate,
        quantile_cont(latency_ms, 0.5) filter (where not cache_hit and attempts > 0)::double as p50_ms,
        quantile_cont(latency_ms, 0.9) filter (where not cache_hit and attempts > 0)::double as p90_ms,
        quantile_cont(latency_ms, 0.99) filter (where not cache_hit and attempts > 0)::double as p99_ms,
        min(created_at) as first_at,
        max(created_at) as last_at
    from calls
    group by grouping sets ((stage, model, kind), ())
    having count(*) > 0
)

select * from final
order by is_total, stage, model, kind
