-- consolidate_near_pairs: near-duplicate pairs by MinHash LSH, verified by exact Jaccard.
-- Each title becomes a set of character shingles; its MinHash signature ($bands x $rows seeded
-- hashes) is cut into $bands bands; titles of one block sharing a band bucket are candidates.
-- A bucket larger than $max_bucket pairs each member with its first $pivots members only (union-
-- find needs connectivity, not every pair; this keeps big clusters linear). Every candidate is
-- then verified on the exact Jaccard similarity of the shingle sets, and pairs whose titles give
-- one setting different values are refused.
-- Grain: one row per accepted pair (a < b).
-- Inputs: near_docs(rid, block, norm_title, assigns, assign_names), one row per title.
-- Parameters: $shingle (characters), $bands, $rows, $max_bucket, $pivots, $threshold.
with docs as (
    select rid, block, norm_title, assigns, assign_names from near_docs
),

shingles as (
    select distinct rid, hash(substr(padded, i, $shingle)) as h
    from (
        select rid, ' ' || norm_title || ' ' as padded,
            unnest(range(1, greatest(length(norm_title) + 2 - $shingle + 2, 2))) as i
        from docs
    )
),

sets as (
    select rid, list(h order by h) as hs from shingles group by rid
),

seeds as (
    select unnest(range($bands * $rows)) as seed
),

signatures as (
    select s.rid, k.seed, min(hash(s.h, k.seed)) as mh
    from shingles as s cross join seeds as k
    group by s.rid, k.seed
),

band_keys as (
    select rid, seed // $rows as band, hash(list(mh order by seed)) as bucket
    from signatures
    group by rid, seed // $rows
),

buckets as (
    select
        d.block, b.band, b.bucket, b.rid,
        row_number() over w as pos,
        count(*) over (partition by d.block, b.band, b.bucket) as size
    from band_keys as b
    join docs as d using (rid)
    window w as (partition by d.block, b.band, b.bucket order by b.rid)
),

candidates as (
    select distinct x.rid as a, y.rid as b
    from (select * from buckets where size > 1 and (size <= $max_bucket or pos <= $pivots)) as x
    join buckets as y
        on x.block = y.block and x.band = y.band and x.bucket = y.bucket and x.rid < y.rid
),

verified as (
    select
        c.a, c.b,
        len(list_filter(sa.hs, lambda x: list_contains(sb.hs, x))) as shared,
        len(sa.hs) + len(sb.hs) as total
    from candidates as c
    join sets as sa on sa.rid = c.a
    join sets as sb on sb.rid = c.b
    join docs as da on da.rid = c.a
    join docs as db on db.rid = c.b
    where len(list_intersect(da.assign_names, db.assign_names))
        = len(list_intersect(da.assigns, db.assigns))
),

final as (
    select a, b, (shared / (total - shared))::double as similarity
    from verified
    where shared / (total - shared) >= $threshold
)

select * from final
order by a, b
