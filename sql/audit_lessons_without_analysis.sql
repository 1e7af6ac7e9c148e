-- audit_lessons_without_analysis: lessons whose analysis has no ok row in analyses. A batch's
-- lessons part is written before its analyses part and removed if that never comes (tidy), so
-- after a run a row here is a fault (or another process's batch caught between its two writes).
-- Audits: lessons, analyses.
-- Grain: one row per lesson.
-- Inputs: lessons(lesson_id, analysis_id, trajectory_id), analyses(analysis_id, status).
-- Parameters: none.
with ok as (
    select distinct analysis_id from analyses where status = 'ok'
),

final as (
    select l.lesson_id, l.analysis_id, l.trajectory_id
    from lessons as l
    anti join ok using (analysis_id)
)

select * from final order by lesson_id
