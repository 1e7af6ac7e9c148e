-- analyse_selection: the trajectories an analyse run covers, and whether each is already done.
-- grain: one row per selected trajectory.
-- inputs: selected_trajectories (trajectories filtered by the user's --where, a view the caller
--   creates), analyses.
-- parameters:
--   $config_id    analyst configuration; an ok analysis under it means done
--   $seed         sampling seed (text)
--   $sampled      true when --sample is given: order by a seeded md5 instead of trajectory_id
--   $sample_n     rows to sample (null: no count limit)
--   $sample_frac  share to sample, 0..1 (null: none)
--   $limit        first rows of the (sampled) selection to keep (null: all)
-- md5 is a fixed function, so a seed picks the same sample in every version and process.
with
selected as (
    select trajectory_id, source, outcome
    from selected_trajectories
),

done as (
    select distinct trajectory_id
    from analyses
    where config_id = $config_id and status = 'ok'
),

ranked as (
    select
        *,
        row_number() over (
            order by
                case when $sampled then md5($seed || ':' || trajectory_id) end,
                trajectory_id
        ) as pick_order,
        count(*) over () as n_selected
    from selected
),

picked as (
    select *
    from ranked
    where
        pick_order <= coalesce(
            $sample_n::bigint,
            round($sample_frac::double * n_selected)::bigint,
            n_selected
        )
        and pick_order <= coalesce($limit::bigint, n_selected)
),

final as (
    select
        p.trajectory_id,
        p.source,
        p.outcome,
        p.pick_order::bigint as pick_order,
        d.trajectory_id is not null as is_done
    from picked as p
    left join done as d using (trajectory_id)
)

select * from final
order by pick_order
