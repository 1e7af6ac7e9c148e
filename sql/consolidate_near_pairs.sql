-- consolidate_near_pairs: near-duplicate pairs by MinHash LSH, verified by exact Jaccard.
-- Each title becomes a set of character shingles; its MinHash signature ($bands x $rows seeded
-- hashes) is cut into $bands bands; titles of one block sharing a band bucket are candidates.
-- A bucket larger than $max_bucket pairs each member with its first $pivots members only (union-
-- find needs connectivity, not every pair; this keeps big clusters linear). Candidates whose
-- signatures agree on fewer than $prefilter of their hashes (an unbiased Jaccard estimate; the
-- caller sets it three standard errors below the threshold) are let go; the rest are verified on
-- the exact Jaccard similarity of their shingle sets. Pairs whose titles give one setting
-- different values are refused.
-- Grain: one row per accepted pair (a < b).
-- Inputs: near_docs(rid, block, norm_title, assigns, assign_names), one row per title.
-- Parameters: $shingle (characters), $bands, $rows, $max_bucket, $pivots, $prefilter,
--             $threshold.
with docs as (
    select rid, block, norm_title, assigns, assign_names from near_docs
),

sets as materialized (
    select
        rid,
        list_distinct(list_transform(
            range(1, greatest(length(norm_title) + 2 - $shingle + 2, 2)),
            lambda i: hash(substr(' ' || norm_title || ' ', i, $shingle))
        )) as hs
    from docs
),

signatures as materialized (
    select rid, list(mh order by seed) as mhs
    from (
        select s.rid, k.seed, list_min(list_transform(s.hs, lambda x: hash(x, k.seed))) as mh
        from sets as s
        cross join (select unnest(range($bands * $rows)) as seed) as k
    )
    group by rid
),

band_keys as (
    select s.rid, b.band, hash(list_slice(s.mhs, b.band * $rows + 1, (b.band + 1) * $rows)) as bucket
    from signatures as s
    cross join (select unnest(range($bands)) as band) as b
),

buckets as (
    select
        d.block, k.band, k.bucket, k.rid,
        row_number() over (partition by d.block, k.band, k.bucket order by k.rid) as pos,
        count(*) over (partition by d.block, k.band, k.bucket) as size
    from band_keys as k
    join docs as d using (rid)
),

candidates as (
    select distinct x.rid as a, y.rid as b
    from (select * from buckets where size > 1 and (size <= $max_bucket or pos <= $pivots)) as x
    join buckets as y
        on x.block = y.block and x.band = y.band and x.bucket = y.bucket and x.rid < y.rid
),

estimated as (
    select c.a, c.b
    from candidates as c
    join signatures as sa on sa.rid = c.a
    join signatures as sb on sb.rid = c.b
    join docs as da on da.rid = c.a
    join docs as db on db.rid = c.b
    where len(list_filter(range(1, len(sa.mhs) + 1), lambda i: sa.mhs[i] = sb.mhs[i]))
            >= $prefilter * len(sa.mhs)
        and len(list_intersect(da.assign_names, db.assign_names))
            = len(list_intersect(da.assigns, db.assigns))
),

verified as (
    select
        e.a, e.b,
        len(list_filter(sa.hs, lambda x: list_contains(sb.hs, x))) as shared,
        len(sa.hs) + len(sb.hs) as total
    from estimated as e
    join sets as sa on sa.rid = e.a
    join sets as sb on sb.rid = e.b
),

final as (
    select a, b, (shared / (total - shared))::double as similarity
    from verified
    where shared / (total - shared) >= $threshold
)

select * from final
order by a, b
