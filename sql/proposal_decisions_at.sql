-- proposal_decisions_at: every decision reviewers took on proposals for one skill folder.
-- grain: one row per decision (decisions), for proposals whose `out` is the folder given as
--   written or resolved.
-- inputs: decisions, proposals
-- parameters: $out, $out_resolved
with

at_folder as (
    select proposal_id
    from proposals
    where out = $out or out = $out_resolved
),

final as (
    select d.*
    from decisions as d
    inner join at_folder using (proposal_id)
)

select * from final
order by decided_at, decision_id
