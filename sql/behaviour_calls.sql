-- behaviour_calls: the tool calls whose actions are still to be parsed, with their outcome.
-- grain: one row per tool call (steps.kind = 'tool_call') of a run that has no actions row
--   written by parser $parser_version.
-- inputs: steps, actions
-- parameters: $parser_version  the command parser's version: runs parsed by another are redone
-- columns:
--   is_error  the first result answering the call reports an error (false when none answers)
with
calls as (
    select trajectory_id, source, step_idx, tool_name, tool_args, tool_call_id
    from steps
    where kind = 'tool_call'
),

parsed as (
    select distinct trajectory_id
    from actions
    where parser_version = $parser_version
),

-- Results name their call by call_step_idx; fall back to tool_call_id where a source lacks it.
results as (
    select
        r.trajectory_id,
        coalesce(r.call_step_idx, c.step_idx) as call_step_idx,
        r.is_error
    from steps as r
    left join calls as c
        on r.call_step_idx is null
        and c.trajectory_id = r.trajectory_id
        and c.tool_call_id = r.tool_call_id
    where r.kind = 'tool_result'
    qualify row_number() over (
        partition by r.trajectory_id, coalesce(r.call_step_idx, c.step_idx) order by r.step_idx
    ) = 1
),

final as (
    select
        c.trajectory_id,
        c.source,
        c.step_idx as call_step_idx,
        c.tool_name,
        c.tool_args,
        coalesce(r.is_error, false) as is_error
    from calls as c
    left join results as r
        on r.trajectory_id = c.trajectory_id
        and r.call_step_idx = c.step_idx
    anti join parsed as p
        on p.trajectory_id = c.trajectory_id
)

select * from final
order by trajectory_id, call_step_idx
