-- recoveries_per_tool: which tool errors the agent recovered from, and what it did in between.
-- grain: one row per source, tool and error message, over the failed tool calls (is_error) of the
--   runs of the sources the newest consolidation read. The message is the first line of the
--   result with its particulars replaced (bracketed and quoted text, dates, paths, ids, numbers),
--   so one failure groups together. An error is retried when the run calls the same tool again
--   later, and recovered when that next call is answered without an error. usual_calls_between
--   is the commonest sequence of other tools called between an error and its successful retry
--   ('' when the retry came straight after it).
-- inputs: tool_calls, latest_lesson_fate, trajectories
-- parameters: none
with

scope as (
    select distinct t.source
    from latest_lesson_fate as f
    inner join trajectories as t on t.trajectory_id = f.trajectory_id
),

calls as (
    select c.*
    from tool_calls as c
    semi join scope as s on s.source = c.source
),

errors as (
    select
        trajectory_id,
        source,
        tool_name,
        outcome,
        call_step_idx,
        left(
            regexp_replace(
                regexp_replace(
                    regexp_replace(
                        regexp_replace(
                            regexp_replace(
                                regexp_replace(
                                    regexp_replace(
                                        regexp_replace(
                                            trim(split_part(trim(result_content), chr(10), 1)),
                                            '\[[^\[\]]*\]', '[...]', 'g'
                                        ),
                                        '\[[^\[\]]*\]', '[...]', 'g'
                                    ),
                                    '''[^''\n]{1,200}''|"[^"\n]{1,200}"', '''...''', 'g'
                                ),
                                '\b\d{4}-\d{2}-\d{2}([T ]\d{2}:\d{2}(:\d{2})?)?\b', '<date>', 'g'
                            ),
                            '([\w.-]*/)+[\w.-]+', '<path>', 'g'
                        ),
                        '\b([A-Za-z_][\w./-]*\d[\w./-]*|\d[\w./-]*[A-Za-z_][\w./-]*)\b', '<id>', 'g'
                    ),
                    '-?\d+([.,]\d+)*', '<n>', 'g'
                ),
                '\s+', ' ', 'g'
            ),
            90
        ) as error
    from calls
    where is_error
),

retries as (
    select
        e.*,
        min(c.call_step_idx) as retry_step_idx
    from errors as e
    left join calls as c
        on c.trajectory_id = e.trajectory_id
        and c.tool_name = e.tool_name
        and c.call_step_idx > e.call_step_idx
    group by all
),

outcomes as (
    select
        r.*,
        c.is_answered and not c.is_error as is_recovered
    from retries as r
    left join calls as c
        on c.trajectory_id = r.trajectory_id and c.call_step_idx = r.retry_step_idx
),

between_calls as (
    select
        o.trajectory_id,
        o.call_step_idx,
        coalesce(
            string_agg(c.tool_name, ' -> ' order by c.call_step_idx)
                filter (where c.call_step_idx is not null),
            ''
        ) as calls_between
    from outcomes as o
    left join calls as c
        on c.trajectory_id = o.trajectory_id
        and c.call_step_idx > o.call_step_idx
        and c.call_step_idx < o.retry_step_idx
    where o.is_recovered
    group by o.trajectory_id, o.call_step_idx
),

usual as (
    select
        o.source,
        o.tool_name,
        o.error,
        b.calls_between,
        count(*) as n
    from outcomes as o
    inner join between_calls as b
        on b.trajectory_id = o.trajectory_id and b.call_step_idx = o.call_step_idx
    group by o.source, o.tool_name, o.error, b.calls_between
    qualify row_number() over (
        partition by o.source, o.tool_name, o.error order by count(*) desc, b.calls_between
    ) = 1
),

counts as (
    select
        source,
        tool_name,
        error,
        count(*) as n_errors,
        count(distinct trajectory_id) as n_runs,
        count(retry_step_idx) as n_retried,
        count(*) filter (where is_recovered) as n_recovered,
        count(distinct trajectory_id) filter (where outcome = 'success') as n_runs_succeeded
    from outcomes
    group by source, tool_name, error
),

final as (
    select
        c.source,
        c.tool_name,
        c.error,
        c.n_errors::bigint as n_errors,
        c.n_runs::bigint as n_runs,
        c.n_retried::bigint as n_retried,
        c.n_recovered::bigint as n_recovered,
        round(c.n_recovered / c.n_errors, 3)::double as share_recovered,
        c.n_runs_succeeded::bigint as n_runs_succeeded,
        u.calls_between as usual_calls_between
    from counts as c
    left join usual as u
        on u.source = c.source and u.tool_name = c.tool_name and u.error = c.error
)

select * from final
order by n_errors desc, source, tool_name, error
