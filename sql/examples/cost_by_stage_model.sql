-- cost_by_stage_model: what the model calls cost, by pipeline stage and model.
-- grain: one row per stage and model of llm_calls. n_calls counts rows: a chat request is one
--   row, an embeddings request one row per text. Cache hits cost nothing and report no tokens;
--   failed calls (error set) are counted apart; n_retries counts the attempts past the first of
--   the calls sent (429s, 5xx, timeouts, a repair of invalid output). mean_latency_ms leaves
--   cache hits out.
-- inputs: llm_calls
-- parameters: none
with

calls as (
    select * from llm_calls
),

final as (
    select
        stage,
        model,
        count(*)::bigint as n_calls,
        count(*) filter (where cache_hit)::bigint as n_cache_hits,
        count(*) filter (where error is not null)::bigint as n_errors,
        coalesce(sum(greatest(attempts - 1, 0)) filter (where not cache_hit), 0)::bigint
            as n_retries,
        sum(tokens_in)::bigint as tokens_in,
        sum(tokens_out)::bigint as tokens_out,
        round(sum(cost_usd), 6)::double as cost_usd,
        round(avg(latency_ms) filter (where not cache_hit), 1)::double as mean_latency_ms
    from calls
    group by stage, model
)

select * from final
order by cost_usd desc, stage, model
