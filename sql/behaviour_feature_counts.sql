-- behaviour_feature_counts: runs with and without each feature, and how many succeeded, per task.
-- grain: one row per source, feature and task (task_id null: runs without a task id).
-- inputs: run_features (the rows of behaviour_run_features.sql, registered under that name)
-- parameters: none
with
final as (
    select
        source,
        feature,
        task_id,
        count(*) filter (where has_feature)::bigint as n_with,
        count(*) filter (where has_feature and outcome = 'success')::bigint as success_with,
        count(*) filter (where not has_feature)::bigint as n_without,
        count(*) filter (where not has_feature and outcome = 'success')::bigint as success_without
    from run_features
    group by all
)

select * from final
order by source, feature, task_id
