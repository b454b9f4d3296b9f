with figures as (
    select * from core_employment_monthly_figures
),

fairs as (
    select * from core_employment_job_fairs
),

fairs_in_month as (
    select
        figures.period,
        count(fairs.event_id) as job_fairs_month,
        coalesce(sum(fairs.jobs_offered), 0) as jobs_offered_month,
        coalesce(sum(fairs.attendees), 0) as fair_attendees_month,
        coalesce(sum(fairs.hires), 0) as fair_hires_month
    from figures
    left join fairs on fairs.period = figures.period
    group by figures.period
),

fairs_to_date as (
    select
        figures.period,
        count(fairs.event_id) as job_fairs_ytd,
        coalesce(sum(fairs.jobs_offered), 0) as jobs_offered_ytd,
        coalesce(sum(fairs.hires), 0) as fair_hires_ytd
    from figures
    left join fairs
        on substr(fairs.period, 1, 4) = substr(figures.period, 1, 4)
        and fairs.period <= figures.period
    group by figures.period
),

final as (
    select
        figures.period,
        figures.region_code,
        figures.urban_new_jobs_month,
        figures.urban_new_jobs_ytd,
        figures.public_welfare_placed_month,
        figures.public_welfare_placed_ytd,
        figures.work_relief_jobs_month,
        figures.work_relief_jobs_ytd,
        figures.ui_recipients,
        figures.ui_benefits_paid_month,
        figures.ui_benefits_paid_ytd,
        round(figures.ui_benefits_paid_month * 10000.0 / nullif(figures.ui_recipients, 0), 2)
            as ui_benefit_per_recipient_yuan,
        fairs_in_month.job_fairs_month,
        fairs_in_month.jobs_offered_month,
        fairs_in_month.fair_attendees_month,
        fairs_in_month.fair_hires_month,
        fairs_to_date.job_fairs_ytd,
        fairs_to_date.jobs_offered_ytd,
        fairs_to_date.fair_hires_ytd,
        figures.batch_id
    from figures
    left join fairs_in_month on fairs_in_month.period = figures.period
    left join fairs_to_date on fairs_to_date.period = figures.period
)

select * from final
