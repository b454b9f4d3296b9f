with events as (
    select * from core_ledger_events
),

by_period_and_type as (
    select
        period,
        substr(period, 1, 4) as year,
        event_type,
        count(*) as events,
        sum(attendance) as attendance,
        sum(sales_driven) as sales_driven
    from events
    group by period, event_type
),

final as (
    select * from by_period_and_type
)

select * from final
