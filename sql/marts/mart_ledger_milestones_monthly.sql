with milestones as (
    select * from core_ledger_milestones
),

ranked as (
    select
        milestones.*,
        row_number() over (
            partition by task, period order by unit, row_no desc
        ) as recency
    from milestones
),

final as (
    select
        period,
        task,
        unit,
        status,
        status_date,
        note,
        case when status = '已完成' then 1 else 0 end as is_done,
        batch_id
    from ranked
    where recency = 1
)

select * from final
