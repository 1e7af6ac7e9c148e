-- consolidate_semantic_pairs: candidate pairs for semantic clustering by random-hyperplane LSH.
-- The caller computes each title's signature bits from its embedding (numpy) and packs them into
-- one integer per band; titles of one block sharing a band key are candidates. As for near
-- duplicates, a bucket larger than $max_bucket pairs each member with its first $pivots members
-- only. Pairs whose titles give one setting different values are refused here; the caller
-- verifies the cosine similarity of the rest. Never a brute-force self-join: the join is on the
-- band key.
-- Grain: one row per candidate pair (a < b).
-- Inputs: semantic_docs(rid, block, assigns, assign_names), one row per title;
--         semantic_bands(rid, band, bucket), one row per title and band.
-- Parameters: $max_bucket, $pivots.
with docs as (
    select rid, block, assigns, assign_names from semantic_docs
),

buckets as (
    select
        d.block, b.band, b.bucket, b.rid,
        row_number() over w as pos,
        count(*) over (partition by d.block, b.band, b.bucket) as size
    from semantic_bands as b
    join docs as d using (rid)
    window w as (partition by d.block, b.band, b.bucket order by b.rid)
),

candidates as (
    select distinct x.rid as a, y.rid as b
    from (select * from buckets where size > 1 and (size <= $max_bucket or pos <= $pivots)) as x
    join buckets as y
        on x.block = y.block and x.band = y.band and x.bucket = y.bucket and x.rid < y.rid
),

final as (
    select c.a, c.b
    from candidates as c
    join docs as da on da.rid = c.a
    join docs as db on db.rid = c.b
    where len(list_intersect(da.assign_names, db.assign_names))
        = len(list_intersect(da.assigns, db.assigns))
)

select * from final
order by a, b
