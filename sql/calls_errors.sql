-- calls_errors: why model requests failed, most frequent reasons first.
-- grain: one row per (stage, model, kind, reason); kind is llm_calls.error_kind (null on rows
--        logged before kinds were recorded); reason is the error text without the attempt count
-- inputs: llm_calls
-- parameters: $stage, $model (varchar; null = all), $limit (integer: rows to return)
with errors as (
    select
        stage,
        model,
        error_kind as kind,
        regexp_replace(error, ' \(gave up after \d+ attempts\)$', '') as reason,
        created_at
    from llm_calls
    where error is not null
      and ($stage::varchar is null or stage = $stage::varchar)
      and ($model::varchar is null or model = $model::varchar)
),

final as (
    select
        stage,
        model,
        kind,
        left(reason, 200) as reason,
        count(*)::bigint as errors,
        max(created_at) as last_at
    from errors
    group by all
)

select * from final
order by errors desc, stage, model, reason
limit $limit
