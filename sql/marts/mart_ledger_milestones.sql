with milestones as (
    select * from core_ledger_milestones
),

ranked as (
    select
        milestones.*,
        row_number() over (
            partition by task order by period desc, unit, row_no desc
        ) as recency
    from milestones
),

latest as (
    select * from ranked where recency = 1
),

final as (
    select
        task,
        unit,
        period as reported_period,
        status,
        status_date,
        note,
        case when status = '已完成' then 1 else 0 end as is_done,
        batch_id
    from latest
)

select * from final
