-- audit_analyses_one_per_run: analysis ids with more than one row. A retry's row replaces the
-- error row it supersedes (tidy), so analyses keeps one row per trajectory and configuration.
-- Audits: analyses.
-- Grain: one row per repeated analysis_id.
-- Inputs: analyses(analysis_id, trajectory_id, config_id).
-- Parameters: none.
with final as (
    select analysis_id, any_value(trajectory_id) as trajectory_id,
        any_value(config_id) as config_id, count(*)::bigint as n_rows
    from analyses
    group by analysis_id
    having count(*) > 1
)

select * from final order by analysis_id
