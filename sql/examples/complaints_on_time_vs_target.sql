-- 12315 on-time rates by due month against the plan's 99% (measure 19).
with monthly as (
    select * from mart_complaints_12315_monthly
),

final as (
    select
        period,
        complaints_due,
        complaint_on_time_rate_pct,
        case when complaint_on_time_rate_pct >= 99 then 1 else 0 end as complaints_meet_target,
        reports_due,
        report_on_time_rate_pct,
        case when report_on_time_rate_pct >= 99 then 1 else 0 end as reports_meet_target
    from monthly
)

select * from final order by period
