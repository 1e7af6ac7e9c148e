-- review_gate: the latest evaluation that played one of the given skill folders as its
--   candidate against an incumbent, with the guard's verdict.
-- grain: at most one row: the newest eval run (eval_runs with a verdict) whose candidate arm's
--   skill_digest is in $digests.
-- inputs: eval_arms, eval_runs
-- parameters: $digests (list of evaluate skill digests)
with

candidates as (
    select distinct eval_id, skill_digest
    from eval_arms
    where role = 'candidate' and list_contains($digests, skill_digest)
),

final as (
    select
        r.eval_id,
        c.skill_digest,
        r.verdict,
        r.verdict_reason,
        r.created_at
    from eval_runs as r
    inner join candidates as c using (eval_id)
    where r.verdict is not null
)

select * from final
order by created_at desc, eval_id
limit 1
