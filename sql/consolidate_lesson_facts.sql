-- consolidate_lesson_facts: the lessons consolidation reads, with their run's task, outcome and
-- model, and the keys the dedupe stages block and compare on.
-- Grain: one row per lesson.
-- Inputs: lessons, trajectories, analyses (lake tables).
-- Parameters: none.
-- Columns added:
--   section       target section with spaces collapsed (null when blank)
--   block         what pairs must share to be compared: lower-cased section + '|' + polarity
--   norm_title    title lower-cased, punctuation and spacing removed (the exact-duplicate key)
--   negated       the title's main clause (without a leading or trailing when / if / unless
--                 condition) advises against something (not / never / avoid / don't ...); a
--                 lesson and its negation are never clustered together, the merge tree
--                 resolves them as a conflict
--   assigns       'name=value' settings the title names, and 'tool=<tool_name>', sorted (pairs
--                 that set one name to different values, or are about two different tools, are
--                 different lessons, never merged)
--   assign_names  the names of those settings
--   source, outcome, task_id, run_model: from the lesson's trajectory (null if it is not in
--                 the lake)
--   config_id     the analyst configuration that wrote the lesson (null without its analysis row)
--   latest_config the lesson comes from the latest successful analysis of its trajectory by
--                 its analyst (by finished_at, then config_id), or has no analysis row: when
--                 an analyst re-analysed a run under new settings (say with a base skill, or
--                 another model), its latest configuration's lessons replace the earlier ones;
--                 different analysts (the miner and a model) add up
with lessons_in as (
    select * from lessons
),

analyses_ok as (
    select analysis_id, config_id, trajectory_id, analyst, finished_at
    from analyses
    where status = 'ok'
),

latest_analysis as (
    select
        trajectory_id,
        analyst,
        first(config_id order by finished_at desc, config_id desc) as config_id
    from analyses_ok
    group by trajectory_id, analyst
),

runs as (
    select trajectory_id, source, task_id, outcome, model as run_model from trajectories
),

keyed as (
    select
        l.lesson_id,
        l.trajectory_id,
        l.kind,
        l.title,
        l.content,
        nullif(trim(regexp_replace(l.target_section, '\s+', ' ', 'g')), '') as section,
        l.tool_name,
        l.rule,
        l.op,
        l.analyst,
        l.confidence,
        l.created_at,
        a.config_id,
        a.config_id is null or a.config_id = la.config_id as latest_config,
        r.source,
        r.task_id,
        r.outcome,
        r.run_model,
        trim(regexp_replace(lower(l.title), '[^\pL\pN_=]+', ' ', 'g')) as norm_title,
        regexp_matches(
            case
                when regexp_matches(lower(l.title), '^\s*(when|if|unless|in cases where)\b[^,]*,')
                    then regexp_replace(lower(l.title), '^\s*(when|if|unless|in cases where)\b[^,]*,', '')
                else regexp_replace(lower(l.title), '\s+(when|if|unless|in cases where)\s.*$', '')
            end,
            '\b(not|never|avoid|avoids|avoiding|don''t|dont|doesn''t|cannot|can''t|shouldn''t|mustn''t|won''t)\b'
        ) as negated,
        list_sort(list_distinct(list_concat(
            list_transform(
                regexp_extract_all(lower(l.title), '[a-z_][a-z0-9_]*\s*=\s*[''"]?[a-z0-9_:/.\-]*[a-z0-9_]'),
                lambda x: regexp_replace(regexp_replace(x, '\s+', '', 'g'), '[''"]', '', 'g')
            ),
            -- the lesson's tool is a setting too: lessons about two tools are two lessons
            case when l.tool_name is not null then ['tool=' || lower(l.tool_name)] else [] end
        ))) as assigns
    from lessons_in as l
    left join runs as r using (trajectory_id)
    left join analyses_ok as a on a.analysis_id = l.analysis_id
    left join latest_analysis as la on la.trajectory_id = l.trajectory_id and la.analyst = l.analyst
),

final as (
    select
        *,
        coalesce(lower(section), '') || '|' || (case when negated then 'neg' else 'pos' end) as block,
        list_transform(assigns, lambda x: split_part(x, '=', 1)) as assign_names
    from keyed
)

select * from final
order by lesson_id
