-- consolidate_lesson_facts: the lessons consolidation reads (the lesson_facts view), with the
-- keys the dedupe stages block and compare on.
-- Grain: one row per lesson. Consolidation registers the result as consolidation_lessons for
--   the queries that follow (the user's lesson_facts view has no keys and no filter).
-- Inputs: the lesson_facts view (sql/views_lesson_facts.sql: lessons, trajectories, analyses).
-- Parameters: $latest_only  true: only the lessons of each run's analysts' latest configurations
--                           (latest_config), false: every lesson.
-- Columns added:
--   run_model     the agent's model (the view's `model`), under the name --where filters use
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
with facts as (
    select * from lesson_facts
    where latest_config or not $latest_only
),

keyed as (
    select
        f.lesson_id,
        f.trajectory_id,
        f.kind,
        f.title,
        f.content,
        f.section,
        f.tool_name,
        f.rule,
        f.op,
        f.analyst,
        f.confidence,
        f.created_at,
        f.config_id,
        f.latest_config,
        f.source,
        f.task_id,
        f.outcome,
        f.model as run_model,
        trim(regexp_replace(lower(f.title), '[^\pL\pN_=]+', ' ', 'g')) as norm_title,
        regexp_matches(
            case
                when regexp_matches(lower(f.title), '^\s*(when|if|unless|in cases where)\b[^,]*,')
                    then regexp_replace(lower(f.title), '^\s*(when|if|unless|in cases where)\b[^,]*,', '')
                else regexp_replace(lower(f.title), '\s+(when|if|unless|in cases where)\s.*$', '')
            end,
            '\b(not|never|avoid|avoids|avoiding|don''t|dont|doesn''t|cannot|can''t|shouldn''t|mustn''t|won''t)\b'
        ) as negated,
        list_sort(list_distinct(list_concat(
            list_transform(
                regexp_extract_all(lower(f.title), '[a-z_][a-z0-9_]*\s*=\s*[''"]?[a-z0-9_:/.\-]*[a-z0-9_]'),
                lambda x: regexp_replace(regexp_replace(x, '\s+', '', 'g'), '[''"]', '', 'g')
            ),
            -- the lesson's tool is a setting too: lessons about two tools are two lessons
            case when f.tool_name is not null then ['tool=' || lower(f.tool_name)] else [] end
        ))) as assigns
    from facts as f
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
