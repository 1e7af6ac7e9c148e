-- miner_calls: every tool call with its result, its position in the run and what came after.
-- grain: one row per tool_call step.
-- inputs: steps (the lake's, or one batch's frame registered under that name).
-- parameters: $result_chars: how many leading characters of each result to keep (0: none; error
--   results always keep their first and last 600 characters in error_text: a traceback or a test
--   report names its error at the end).
-- columns:
--   call_no        0-based position of the call among the run's tool calls
--   n_calls        tool calls in the run
--   result_step_idx step of the result (null when the call got none)
--   is_error       the result reports an error
--   error_text     an error result's text (its head and tail when long)
--   result_text    leading text of the result ($result_chars)
--   is_final       no assistant step follows the call's result: the call ended the run
with
steps_ as (
    select * from steps
),

calls as (
    select trajectory_id, source, step_idx, tool_name, tool_args, tool_call_id, content as call_text
    from steps_
    where kind = 'tool_call'
),

-- Results name their call by call_step_idx; fall back to tool_call_id where a source lacks it.
results_raw as (
    select
        r.trajectory_id,
        coalesce(r.call_step_idx, c.step_idx) as call_step_idx,
        r.step_idx,
        r.is_error,
        r.content
    from steps_ as r
    left join calls as c
        on r.call_step_idx is null
        and c.trajectory_id = r.trajectory_id
        and c.tool_call_id = r.tool_call_id
    where r.kind = 'tool_result'
),

results as (
    select
        trajectory_id,
        call_step_idx,
        min(step_idx) as result_step_idx,
        bool_or(is_error) as is_error,
        arg_min(content, step_idx) as content
    from results_raw
    where call_step_idx is not null
    group by trajectory_id, call_step_idx
),

last_agent as (
    select trajectory_id, max(step_idx) as last_agent_step
    from steps_
    where role = 'assistant'
    group by trajectory_id
),

final as (
    select
        c.trajectory_id,
        c.source,
        c.step_idx::bigint as step_idx,
        (row_number() over (partition by c.trajectory_id order by c.step_idx) - 1)::bigint as call_no,
        (count(*) over (partition by c.trajectory_id))::bigint as n_calls,
        c.tool_name,
        c.tool_args,
        c.call_text,
        r.result_step_idx::bigint as result_step_idx,
        coalesce(r.is_error, false) as is_error,
        case
            when not coalesce(r.is_error, false) then null
            when length(r.content) <= 1200 then r.content
            else left(r.content, 600) || chr(10) || '...' || chr(10) || right(r.content, 600)
        end as error_text,
        left(coalesce(r.content, ''), $result_chars::bigint) as result_text,
        coalesce(c.step_idx >= la.last_agent_step, true) as is_final
    from calls as c
    left join results as r
        on r.trajectory_id = c.trajectory_id and r.call_step_idx = c.step_idx
    left join last_agent as la
        on la.trajectory_id = c.trajectory_id
)

select * from final
order by trajectory_id, step_idx
