-- latest_run and latest_<table>: the newest consolidation run and its rows.
-- grain: latest_run has one row (none before the first consolidation): the run of
--   consolidations with the latest created_at (run_id breaks a tie). Each latest_<table> has the
--   grain of <table>, restricted to that run; the latest_tables placeholder holds one per table the
--   schema registry partitions by run_id (pipeline/report/views.py `latest_tables`).
-- inputs: consolidations and every run-partitioned table; skill_line_lessons, skill_lessons,
--   lesson_fate
-- parameters: none
create or replace view latest_run as
with

runs as (
    select * from consolidations
),

final as (
    select *
    from runs
    qualify row_number() over (order by created_at desc, run_id desc) = 1
)

select * from final;

{latest_tables}

create or replace view latest_skill_line_lessons as
select * from skill_line_lessons where run_id = (select run_id from latest_run);

create or replace view latest_skill_lessons as
select * from skill_lessons where run_id = (select run_id from latest_run);

create or replace view latest_lesson_fate as
select * from lesson_fate where run_id = (select run_id from latest_run);
