with cases as (
    select * from mart_complaints_12315_cases
),

due as (
    select * from cases where due_period is not null
),

by_due_period as (
    select
        due_period as period,
        sum(case when case_type = '投诉' then 1 else 0 end) as complaints_due,
        sum(case when case_type = '投诉' and on_time = 1 then 1 else 0 end)
            as complaints_on_time,
        sum(case when case_type = '投诉' and is_pending = 1 then 1 else 0 end)
            as complaints_pending,
        sum(case when case_type = '举报' then 1 else 0 end) as reports_due,
        sum(case when case_type = '举报' and on_time = 1 then 1 else 0 end) as reports_on_time,
        sum(case when case_type = '举报' and is_pending = 1 then 1 else 0 end)
            as reports_pending,
        sum(deadline_estimated) as deadlines_estimated
    from due
    group by due_period
),

final as (
    select
        by_due_period.*,
        round(complaints_on_time * 100.0 / nullif(complaints_due, 0), 2)
            as complaint_on_time_rate_pct,
        round(reports_on_time * 100.0 / nullif(reports_due, 0), 2) as report_on_time_rate_pct,
        case
            when complaints_pending + reports_pending + deadlines_estimated > 0 then 1
            else 0
        end as is_provisional
    from by_due_period
)

select * from final
