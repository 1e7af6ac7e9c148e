-- audit_consolidate_cited_non_members: consolidated lessons that cite a lesson outside their
-- own cluster. A summary may only draw on its members; any row here is a fault.
-- Grain: one row per (cluster, cited lesson) that is not a member.
-- Inputs: summaries(cluster_id, cited_lesson_ids); cluster_lessons(lesson_id, cluster_id).
-- Parameters: none.
with cited as (
    select cluster_id, unnest(cited_lesson_ids) as lesson_id from summaries
),

final as (
    select c.cluster_id, c.lesson_id
    from cited as c
    left join cluster_lessons as m
        on m.cluster_id = c.cluster_id and m.lesson_id = c.lesson_id
    where m.lesson_id is null
)

select * from final
order by cluster_id, lesson_id
