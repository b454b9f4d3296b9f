with cases as (
    select * from core_complaints_12315_cases
),

calendar as (
    select day, workday_seq from ref_workday_calendar
),

workdays as (
    select day, workday_seq from ref_workday_calendar where is_workday
),

covered as (
    select max(day) as last_covered_day
    from ref_workday_calendar
    where day_type not in ('fallback_workday', 'fallback_weekend')
),

positioned as (
    select
        cases.*,
        received_day.workday_seq as received_seq,
        accepted_day.workday_seq as accepted_seq
    from cases
    left join calendar as received_day on received_day.day = cases.received_date
    left join calendar as accepted_day on accepted_day.day = cases.accepted_date
),

deadlines as (
    select
        positioned.*,
        accept_by.day as accept_deadline,
        mediate_by.day as mediation_deadline,
        check_by.day as check_deadline
    from positioned
    left join workdays as accept_by
        on positioned.case_type = '投诉'
        and accept_by.workday_seq = positioned.received_seq + 7
    left join workdays as mediate_by
        on positioned.case_type = '投诉'
        and mediate_by.workday_seq = positioned.accepted_seq + 45
    left join workdays as check_by
        on positioned.case_type = '举报'
        and check_by.workday_seq = positioned.received_seq + 15
),

final_dates as (
    select
        deadlines.*,
        case
            when case_type = '举报' then check_deadline
            when outcome = '不予受理' then accept_deadline
            else mediation_deadline
        end as deadline_date,
        case when case_type = '举报' then checked_date else closed_date end as done_date
    from deadlines
),

flagged as (
    select
        final_dates.*,
        case
            when final_dates.deadline_date > covered.last_covered_day
                or final_dates.accept_deadline > covered.last_covered_day then 1
            else 0
        end as deadline_estimated
    from final_dates
    cross join covered
),

final as (
    select
        period,
        region_code,
        case_id,
        case_type,
        matter_type,
        handling_unit,
        received_date,
        accepted_date,
        closed_date,
        checked_date,
        outcome,
        accept_deadline,
        deadline_date,
        substr(deadline_date, 1, 7) as due_period,
        done_date,
        case
            when case_type <> '投诉' or accepted_date is null or accept_deadline is null then null
            when accepted_date <= accept_deadline then 1
            else 0
        end as accepted_on_time,
        case
            when done_date is null or deadline_date is null then null
            when done_date <= deadline_date
                and (case_type = '举报' or accepted_date <= accept_deadline) then 1
            else 0
        end as on_time,
        case when done_date is null then 1 else 0 end as is_pending,
        deadline_estimated,
        batch_id
    from flagged
)

select * from final
