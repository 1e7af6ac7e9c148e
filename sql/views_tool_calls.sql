-- tool_calls: every tool call joined to the result that answered it.
-- grain: one row per tool call (steps.kind = 'tool_call'); result columns are null when no
--   result answers it. A result answers a call through call_step_idx or, where the source left
--   that empty, through tool_call_id; when two results answer one call the first one is kept.
-- inputs: steps, trajectories
-- parameters: none
create or replace view tool_calls as
with

calls as (
    select * from steps where kind = 'tool_call'
),

results as (
    select * from steps where kind = 'tool_result'
),

results_by_id as (
    -- a result without call_step_idx finds its call through tool_call_id
    select
        r.*,
        coalesce(r.call_step_idx, c.step_idx) as answers_step_idx
    from results as r
    left join calls as c
        on c.trajectory_id = r.trajectory_id
        and r.call_step_idx is null
        and c.tool_call_id = r.tool_call_id
),

first_result as (
    select *
    from results_by_id
    where answers_step_idx is not null
    qualify row_number() over (
        partition by trajectory_id, answers_step_idx order by step_idx
    ) = 1
),

final as (
    select
        c.trajectory_id,
        c.source,
        t.task_id,
        t.model,
        t.outcome,
        c.step_idx as call_step_idx,
        r.step_idx as result_step_idx,
        c.tool_name,
        c.tool_args,
        c.tool_call_id,
        c.content as call_content,
        r.content as result_content,
        r.step_idx is not null as is_answered,
        coalesce(r.is_error, false) as is_error
    from calls as c
    left join first_result as r
        on r.trajectory_id = c.trajectory_id
        and r.answers_step_idx = c.step_idx
    left join trajectories as t
        on t.trajectory_id = c.trajectory_id
)

select * from final;
