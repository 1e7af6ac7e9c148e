-- behaviour_run_features: the behaviour features of every run whose outcome is known.
-- grain: one row per run and feature that applies to it (a feature about edits applies only to
--   runs that edited a source file; an order A-before-B only to runs that did both).
-- inputs: trajectories, actions
-- parameters: none
-- columns:
--   feature      used:<family> | before:<family a>:<family b> (a < b by name) | edited_tests |
--                tested_after_last_edit | tested_before_edit | reproduced_before_edit |
--                viewed_before_edit | many_edits | ended_on_error | long_run
--   has_feature  the run shows it
--   step_idx     a step that shows it (or, without it, the step where it was missing), may be null
with
runs as (
    select trajectory_id, source, task_id, outcome, n_steps
    from trajectories
    where outcome in ('success', 'failure')
),

acts as (
    select a.*
    from actions as a
    semi join runs as r on r.trajectory_id = a.trajectory_id
),

families as (
    select distinct source, family from acts
),

-- where a family first shows: its step, and its position (step, action) for the order of
-- actions within one command
used as (
    select
        trajectory_id,
        family,
        min(call_step_idx) as first_step,
        min([call_step_idx, action_idx]) as first_at
    from acts
    group by all
),

used_features as (
    select
        r.trajectory_id,
        'used:' || f.family as feature,
        u.first_step is not null as has_feature,
        u.first_step as step_idx
    from runs as r
    join families as f on f.source = r.source
    left join used as u on u.trajectory_id = r.trajectory_id and u.family = f.family
),

order_features as (
    select
        a.trajectory_id,
        'before:' || a.family || ':' || b.family as feature,
        a.first_at < b.first_at as has_feature,
        least(a.first_step, b.first_step) as step_idx
    from used as a
    join used as b on b.trajectory_id = a.trajectory_id and a.family < b.family
),

-- Edits of source files (not tests); the features about editing apply to runs that made one.
source_edits as (
    select
        trajectory_id,
        min(call_step_idx) as first_edit,
        max(call_step_idx) as last_edit,
        count(*) as n_edits,
        arg_min(regexp_extract(path, '[^/]+$'), call_step_idx) as first_file
    from acts
    where family = 'edit' and not is_test_path
    group by all
),

edit_runs as (
    select
        e.*,
        r.source,
        median(e.n_edits) over (partition by r.source) as median_edits
    from source_edits as e
    join runs as r using (trajectory_id)
),

created as (
    select trajectory_id, regexp_extract(path, '[^/]+$') as file, min(call_step_idx) as created_at
    from acts
    where family = 'create' and path is not null
    group by all
),

edit_facts as (
    select
        e.trajectory_id,
        e.first_edit,
        e.last_edit,
        e.n_edits > e.median_edits as many_edits,
        (select min(a.call_step_idx) from acts as a
         where a.trajectory_id = e.trajectory_id and a.family = 'test'
           and a.call_step_idx > e.last_edit) as test_after,
        (select min(a.call_step_idx) from acts as a
         where a.trajectory_id = e.trajectory_id and a.family = 'test'
           and a.call_step_idx < e.first_edit) as test_before,
        (select min(a.call_step_idx) from acts as a
         join created as c
           on c.trajectory_id = a.trajectory_id
           and c.file = regexp_extract(a.path, '[^/]+$')
           and c.created_at <= a.call_step_idx
         where a.trajectory_id = e.trajectory_id and a.family = 'script'
           and a.call_step_idx < e.first_edit) as repro_run,
        (select min(a.call_step_idx) from acts as a
         where a.trajectory_id = e.trajectory_id and a.family = 'view'
           and regexp_extract(a.path, '[^/]+$') = e.first_file
           and a.call_step_idx < e.first_edit) as viewed
    from edit_runs as e
),

edit_features as (
    select trajectory_id, feature, has_feature, step_idx
    from edit_facts
    cross join lateral (
        values
            ('tested_after_last_edit', test_after is not null, coalesce(test_after, last_edit)),
            ('tested_before_edit', test_before is not null, coalesce(test_before, first_edit)),
            ('reproduced_before_edit', repro_run is not null, coalesce(repro_run, first_edit)),
            ('viewed_before_edit', viewed is not null, coalesce(viewed, first_edit)),
            ('many_edits', many_edits, last_edit)
    ) as f(feature, has_feature, step_idx)
),

test_edits as (
    select trajectory_id, min(call_step_idx) as step_idx
    from acts
    where family in ('edit', 'create') and is_test_path
    group by all
),

test_edit_features as (
    -- applies where the source edits files at all
    select
        r.trajectory_id,
        'edited_tests' as feature,
        t.step_idx is not null as has_feature,
        t.step_idx
    from runs as r
    left join test_edits as t using (trajectory_id)
    where r.source in (select source from families where family = 'edit')
),

last_calls as (
    select trajectory_id, arg_max(is_error, call_step_idx) as is_error, max(call_step_idx) as step_idx
    from acts
    group by all
),

end_features as (
    select trajectory_id, 'ended_on_error' as feature, is_error as has_feature, step_idx
    from last_calls
),

length_features as (
    select
        trajectory_id,
        'long_run' as feature,
        n_steps > median(n_steps) over (partition by source) as has_feature,
        null::bigint as step_idx
    from runs
),

features as (
    select * from used_features
    union all by name select * from order_features
    union all by name select * from edit_features
    union all by name select * from test_edit_features
    union all by name select * from end_features
    union all by name select * from length_features
),

final as (
    select
        r.source,
        r.task_id,
        f.trajectory_id,
        r.outcome,
        f.feature,
        f.has_feature::boolean as has_feature,
        f.step_idx::bigint as step_idx
    from features as f
    join runs as r using (trajectory_id)
)

select * from final
order by source, feature, trajectory_id
