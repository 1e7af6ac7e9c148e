-- proposal_edits_of: the edits of one proposal, in their order (e1, e2, ...).
-- grain: one row per edit (proposal_edits).
-- inputs: proposal_edits
-- parameters: $proposal_id
with

final as (
    select * exclude (proposal_id)
    from proposal_edits
    where proposal_id = $proposal_id
)

select * from final
order by cast(substr(edit_id, 2) as integer)
