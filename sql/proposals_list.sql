-- proposals_list: every proposal, newest first, with what its review decided.
-- grain: one row per proposal (proposals); n_accepted / n_rejected count its decisions, and
--   version_id is the version its review published (null: not reviewed yet).
-- inputs: proposals, decisions
-- parameters: none
with

reviewed as (
    select
        proposal_id,
        count(*) filter (where verdict = 'accept')::bigint as n_accepted,
        count(*) filter (where verdict = 'reject')::bigint as n_rejected,
        any_value(version_id) as version_id
    from decisions
    group by proposal_id
),

final as (
    select
        p.*,
        coalesce(r.n_accepted, 0) as n_accepted,
        coalesce(r.n_rejected, 0) as n_rejected,
        r.version_id
    from proposals as p
    left join reviewed as r using (proposal_id)
)

select * from final
order by created_at desc, proposal_id
