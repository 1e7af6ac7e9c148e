-- proposal_past_decisions: for each edit of a new proposal, the latest decision taken on the
--   same statement: the same kind of edit, resting on overlapping lessons (Jaccard at least
--   $min_jaccard) or saying the same thing (equal normalised text).
-- grain: one row per edit that matches an earlier decision.
-- inputs: new_edits(edit_id, kind, lesson_ids, norm), past_decisions(decisions rows with norm)
--   (both registered by the caller)
-- parameters: $min_jaccard
with

pairs as (
    select
        e.edit_id,
        e.norm = d.norm as same_text,
        len(list_intersect(list_distinct(e.lesson_ids), list_distinct(d.lesson_ids)))
            as n_shared,
        len(list_distinct(e.lesson_ids)) + len(list_distinct(d.lesson_ids)) as n_both,
        d.decision_id,
        d.verdict,
        d.reason,
        d.decided_by,
        d.decided_at,
        d.n_trajectories
    from new_edits as e
    inner join past_decisions as d on e.kind = d.kind
),

matched as (
    select
        *,
        case when n_both > n_shared then n_shared / (n_both - n_shared) else 0 end as jaccard
    from pairs
),

ranked as (
    select
        *,
        row_number() over (
            partition by edit_id order by decided_at desc, jaccard desc, decision_id
        ) as rank_in_edit
    from matched
    where same_text or jaccard >= $min_jaccard
),

final as (
    select
        edit_id,
        decision_id,
        verdict,
        reason,
        decided_by,
        decided_at,
        n_trajectories,
        jaccard
    from ranked
    where rank_in_edit = 1
)

select * from final
order by edit_id
